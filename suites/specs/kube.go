package specs

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/guestcatalog/guestcatalog/framework"
	gexec "github.com/guestcatalog/guestcatalog/framework/exec"
)

// kubeFlavor says how to reach one Kubernetes distribution in the guest.
type kubeFlavor struct {
	// kubectl runs as root.
	kubectl string
	// importImage loads an OCI archive into the CRI's k8s.io namespace.
	importImage string
	// asUser: the cluster belongs to the template's user (rootless).
	asUser bool
}

// kubeFlavorOf says how to reach the cluster of a Kubernetes engine.
func kubeFlavorOf(engine string) (kubeFlavor, bool) {
	switch engine {
	case "k3s":
		return kubeFlavor{kubectl: "k3s kubectl", importImage: "k3s ctr -n k8s.io images import"}, true
	case "k0s":
		return kubeFlavor{kubectl: "k0s kubectl", importImage: "k0s ctr -n k8s.io images import"}, true
	case "rke2":
		return kubeFlavor{kubectl: "/var/lib/rancher/rke2/bin/kubectl --kubeconfig /etc/rancher/rke2/rke2.yaml", importImage: "/var/lib/rancher/rke2/bin/ctr --address /run/k3s/containerd/containerd.sock -n k8s.io images import"}, true
	case "k8s":
		return kubeFlavor{kubectl: "kubectl --kubeconfig /etc/kubernetes/admin.conf", importImage: "ctr -n k8s.io images import"}, true
	case "usernetes":
		// Usernetes runs the cluster in rootless containers owned by the
		// user; its Makefile targets wrap kubectl and the node's containerd.
		return kubeFlavor{kubectl: "cd ~/usernetes && make -s kubectl --", importImage: "cd ~/usernetes && docker compose exec -T node ctr -n k8s.io images import -", asUser: true}, true
	}
	return kubeFlavor{}, false
}

const kubeWorkload = `apiVersion: v1
kind: Pod
metadata:
  name: gc-web
  labels: {app: gc-web}
spec:
  containers:
  - name: web
    image: %[1]s
    imagePullPolicy: Never
    command: ["sh", "-c", "echo gc-web started; exec httpd -f -p 80 -h /var/www"]
---
apiVersion: v1
kind: Service
metadata:
  name: gc-web
spec:
  selector: {app: gc-web}
  ports: [{port: 80, targetPort: 80}]
`

// KubernetesSpec checks a single-node cluster: node Ready, a pod from a
// locally imported image Running, a Service answering by DNS name, logs.
func KubernetesSpec(run *framework.Run, engine string, guest func() *framework.Guest) {
	flavor, ok := kubeFlavorOf(engine)
	if !ok {
		panic(fmt.Sprintf("specs.KubernetesSpec: unknown engine %q", engine))
	}
	// The cluster's commands run as root, or as the user for rootless ones.
	exec := func(ctx SpecContext, g *framework.Guest, script string) (string, error) {
		var res gexec.Result
		var err error
		if flavor.asUser {
			res, err = g.Exec(ctx, script)
		} else {
			res, err = g.ExecRoot(ctx, script)
		}
		return strings.TrimSpace(string(res.Stdout)), err
	}
	must := func(ctx SpecContext, g *framework.Guest, script string) string {
		GinkgoHelper()
		if flavor.asUser {
			return g.Run(ctx, script)
		}
		return g.RunRoot(ctx, script)
	}
	kubectl := func(args string) string { return flavor.kubectl + " " + args }

	It(engine+": the node is Ready", func(ctx SpecContext) {
		g := guest()
		Eventually(ctx, func() (string, error) {
			return exec(ctx, g, kubectl(`get nodes -o jsonpath='{.items[*].status.conditions[?(@.type=="Ready")].status}'`))
		}).WithTimeout(g.Interval("cluster")).WithPolling(g.Interval("default/poll")).
			Should(HavePrefix("True"))
	}, NodeTimeout(2*run.Interval("cluster")))

	It(engine+": a pod from a locally imported image is Running", func(ctx SpecContext) {
		g := guest()
		img := g.UploadTestImages(ctx)
		must(ctx, g, flavor.importImage+" "+img.OCI)
		g.Upload(ctx, []byte(fmt.Sprintf(kubeWorkload, framework.TestImageRef)), "/tmp/gc-kube/web.yaml", 0o644)
		must(ctx, g, kubectl("apply -f /tmp/gc-kube/web.yaml"))
		must(ctx, g, kubectl("wait --for=condition=Ready pod/gc-web --timeout="+g.Interval("cluster").String()))
	}, NodeTimeout(2*run.Interval("cluster")))

	It(engine+": a Service answers by its DNS name", func(ctx SpecContext) {
		g := guest()
		Eventually(ctx, func() (string, error) {
			return exec(ctx, g, kubectl("run gc-client-$(date +%s) --rm -i --restart=Never --image="+framework.TestImageRef+
				" --image-pull-policy=Never -- wget -qO- http://gc-web.default.svc.cluster.local/"))
		}).WithTimeout(g.Interval("cluster")).WithPolling(g.Interval("default/poll")).
			Should(ContainSubstring("hello from busybox"))
	}, NodeTimeout(2*run.Interval("cluster")))

	It(engine+": kubectl logs shows the pod's output", func(ctx SpecContext) {
		g := guest()
		Expect(must(ctx, g, kubectl("logs gc-web"))).To(ContainSubstring("gc-web started"))
	}, NodeTimeout(run.Interval("engine")))
}
