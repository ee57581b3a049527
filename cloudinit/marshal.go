package cloudinit

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
)

// MarshalYAML writes v (a struct with yaml tags, a map, a slice) with this
// package's YAML writer: the one emitter of the project, whose scalars
// always read back as written (goccy/go-yaml's literal style does not for a
// script whose first line is indented). goccy/go-yaml walks v (field order,
// omitempty, custom marshalers) into flow JSON, which is decoded into an
// ordered tree and written in block style; the document is decoded again
// and compared before it is returned.
func MarshalYAML(v any) ([]byte, error) {
	flow, err := yaml.MarshalWithOptions(v, yaml.JSON())
	if err != nil {
		return nil, err
	}
	var tree any
	if err := yaml.UnmarshalWithOptions(flow, &tree, yaml.UseOrderedMap()); err != nil {
		return nil, fmt.Errorf("re-reading %T: %w", v, err)
	}
	n, err := toNode(tree)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	switch n := n.(type) {
	case mapping:
		if len(n) == 0 {
			b.WriteString("{}\n")
		} else if err := writeMapping(&b, n, 0, false); err != nil {
			return nil, err
		}
	case seq:
		if len(n) == 0 {
			b.WriteString("[]\n")
		} else if err := writeSeq(&b, n, 0, false); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("yaml: %T is neither a mapping nor a sequence", v)
	}
	out := []byte(b.String())
	if err := checkRoundTripNode(out, n); err != nil {
		return nil, err
	}
	return out, nil
}

// toNode converts a decoded ordered tree into the writer's nodes; nulls
// are left out (nil).
func toNode(v any) (node, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case yaml.MapSlice:
		m := mapping{}
		for _, it := range v {
			k, ok := it.Key.(string)
			if !ok {
				k = fmt.Sprint(it.Key)
			}
			n, err := toNode(it.Value)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			m.set(k, n)
		}
		return m, nil
	case []any:
		s := seq{}
		for i, e := range v {
			n, err := toNode(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			if n == nil {
				n = ""
			}
			s = append(s, n)
		}
		return s, nil
	case string, bool:
		return v, nil
	case uint64:
		return int(v), nil
	case int64:
		return int(v), nil
	case int:
		return v, nil
	case float64:
		if v == float64(int(v)) {
			return int(v), nil
		}
		return v, nil
	default:
		return nil, fmt.Errorf("yaml: unsupported value type %T", v)
	}
}

// checkRoundTripNode is checkRoundTrip for any top-level node.
func checkRoundTripNode(data []byte, n node) error {
	var got any
	if err := yaml.Unmarshal(data, &got); err != nil {
		return fmt.Errorf("decoding written yaml: %w", err)
	}
	want := plainTree(n)
	if s, ok := n.(seq); ok && len(s) == 0 {
		want = []any{}
	}
	if m, ok := n.(mapping); ok && len(m) == 0 {
		want = map[string]any{}
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("written yaml does not read back as written:\n%s", data)
	}
	return nil
}
