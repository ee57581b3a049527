package exec

// EnvNamePattern is the rule of [ValidEnvName], as a regular expression
// for messages and schemas.
const EnvNamePattern = `^[A-Za-z_][A-Za-z0-9_]*$`

// ValidEnvName reports whether name is an environment variable name every
// POSIX shell accepts as a variable: a letter or "_", then letters, digits
// and "_" (EnvNamePattern). It is the one definition of that rule: the
// catalog checks env and param names with it, cloudinit the names it
// exports, and Cmd.Validate the names it passes.
func ValidEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
