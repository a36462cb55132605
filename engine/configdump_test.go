package engine

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
)

// TestConfigDumpLayouts: ckpt's record survives the podman-shaped
// config.dump, the older layout (the record itself) still reads, a ckpt
// that knows only the older layout refuses the new one, and a newer
// layout or a missing record is refused.
func TestConfigDumpLayouts(t *testing.T) {
	c := &Container{Version: 1, ID: "f77e897b565b966b0ec6adda7dfaf35a88667795019968950a2b4818e99bc7b5", Name: "web",
		Image: "localhost/w:1", ImageID: "b6d6", Command: []string{"/bin/counter"}, Network: "none",
		User: &User{UID: 7, GID: 7}, CreatedAt: time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC),
		Mounts: []Mount{{Type: "volume", Name: "v", Destination: "/data", ReadOnly: true}, {Type: "bind", Source: "/srv", Destination: "/srv"}}}
	b, err := marshalConfigDump(c, "/usr/bin/runc")
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeConfigDump(b)
	if err != nil || got.ID != c.ID || got.User == nil || got.User.UID != 7 || len(got.Mounts) != 2 || got.Mounts[1].Source != "/srv" {
		t.Fatalf("decode(marshal) = %+v, %v", got, err)
	}
	var pod struct {
		ID, Name, RootfsImageID, RootfsImageName string
		CreateNetNS                              bool `json:"createNetNS"`
		Runtime                                  string
		NamedVolumes                             []struct {
			Name    string   `json:"volumeName"`
			Options []string `json:"options"`
		} `json:"namedVolumes"`
	}
	if err := json.Unmarshal(b, &pod); err != nil || pod.ID != c.ID || pod.Name != "web" || pod.RootfsImageID != "b6d6" ||
		pod.RootfsImageName != "localhost/w:1" || !pod.CreateNetNS || pod.Runtime != "runc" ||
		len(pod.NamedVolumes) != 1 || pod.NamedVolumes[0].Name != "v" || len(pod.NamedVolumes[0].Options) != 1 {
		t.Fatalf("podman's fields = %+v, %v\n%s", pod, err, b)
	}
	host := *c
	host.Network = "host"
	hb, _ := marshalConfigDump(&host, "runc")
	var hp struct {
		CreateNetNS bool   `json:"createNetNS"`
		NetworkMode string `json:"networkMode"`
	}
	if err := json.Unmarshal(hb, &hp); err != nil || hp.CreateNetNS || hp.NetworkMode != "host" {
		t.Fatalf("host network: podman's fields = %+v, %v", hp, err)
	}
	var old Container
	if err := json.Unmarshal(b, &old); err == nil {
		t.Fatalf("a ckpt reading config.dump as its record read %+v, want a decoding error", old)
	}
	v1, _ := json.Marshal(c)
	if got, err := decodeConfigDump(v1); err != nil || got.ID != c.ID || len(got.Mounts) != 2 {
		t.Fatalf("decode(older layout) = %+v, %v", got, err)
	}
	for name, doc := range map[string]string{
		"newer":     `{"version":"3","ckpt":{"id":"x"}}`,
		"no record": `{"version":"2","id":"x"}`,
		"null":      `{"version":"2","ckpt":null}`,
		"not JSON":  `{"version":`,
	} {
		if _, err := decodeConfigDump([]byte(doc)); !errors.Is(err, format.ErrFormat) {
			t.Errorf("%s: decode = %v, want format.ErrFormat", name, err)
		}
	}
}

// TestConfigDumpStored reads the record of an archive ckpt wrote before
// the podman-shaped layout (testdata/ckpt/counter.tar.zst).
func TestConfigDumpStored(t *testing.T) {
	c, err := decodeConfigDump(extractMember(t, "../testdata/ckpt/counter.tar.zst", format.ConfigName))
	if err != nil {
		t.Fatal(err)
	}
	var vol, bind bool
	for _, m := range c.Mounts {
		vol = vol || (m.Type == "volume" && m.Name == "vol1" && m.Destination == "/data")
		bind = bind || (m.Type == "bind" && m.Destination == "/hostdir" && m.ReadOnly)
	}
	if c.Name != "w" || len(c.Command) == 0 || !vol || !bind {
		t.Fatalf("the stored archive's record = %+v", c)
	}
}
