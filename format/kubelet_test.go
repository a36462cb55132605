package format

import "testing"

func TestReadKube(t *testing.T) {
	tests := []struct {
		name, spec string
		want       Kube
		ok         bool
		engine     string
	}{
		{"containerd", `{"annotations":{"io.kubernetes.cri.container-name":"app","io.kubernetes.cri.sandbox-name":"web",
			"io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-uid":"u1","io.kubernetes.cri.sandbox-id":"s1"}}`,
			Kube{Engine: EngineContainerd, Pod: "web", Namespace: "shop", Container: "app", PodUID: "u1", SandboxID: "s1"}, true, EngineContainerd},
		{"cri-o", `{"annotations":{"io.container.manager":"cri-o","io.kubernetes.pod.name":"web","io.kubernetes.pod.namespace":"shop",
			"io.kubernetes.pod.uid":"u1","io.kubernetes.container.name":"app","io.kubernetes.cri-o.SandboxID":"s1","io.kubernetes.cri-o.IP.0":"10.0.0.1"}}`,
			Kube{Engine: EngineCRIO, Pod: "web", Namespace: "shop", Container: "app", PodUID: "u1", SandboxID: "s1", IP: "10.0.0.1"}, true, EngineCRIO},
		{"cri-o metadata only", `{"annotations":{"io.container.manager":"cri-o","io.kubernetes.pod.name":"web","io.kubernetes.pod.namespace":"shop",
			"io.kubernetes.cri-o.Metadata":"{\"name\":\"app\"}"}}`,
			Kube{Engine: EngineCRIO, Pod: "web", Namespace: "shop", Container: "app"}, true, EngineCRIO},
		{"podman", `{"annotations":{"io.container.manager":"libpod","io.kubernetes.pod.name":"web"}}`, Kube{}, false, EnginePodman},
		{"containerd without a pod", `{"annotations":{}}`, Kube{}, false, EngineContainerd},
		{"not json", `{`, Kube{}, false, ""},
	}
	for _, tt := range tests {
		got, ok := ReadKube([]byte(tt.spec))
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: ReadKube = %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
		if e := LegacyEngine([]byte(tt.spec)); e != tt.engine {
			t.Errorf("%s: LegacyEngine = %q, want %q", tt.name, e, tt.engine)
		}
	}
}
