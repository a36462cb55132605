package format

import (
	"testing"

	metadata "github.com/checkpoint-restore/checkpointctl/lib"
)

// TestNamesMatchCheckpointctl keeps the member names equal to the ones
// checkpointctl (and so podman) use.
func TestNamesMatchCheckpointctl(t *testing.T) {
	for _, c := range []struct{ ours, theirs string }{
		{ConfigName, metadata.ConfigDumpFile},
		{SpecName, metadata.SpecDumpFile},
		{NetworkStatusName, metadata.NetworkStatusFile},
		{RootfsDiffName, metadata.RootFsDiffTar},
		{DeletedFilesName, metadata.DeletedFilesFile},
		{DevShmName, metadata.DevShmCheckpointTar},
		{DumpLogName, metadata.DumpLogFile},
		{CheckpointDir, metadata.CheckpointDirectory},
		{VolumesDir, metadata.CheckpointVolumesDirectory},
	} {
		if c.ours != c.theirs {
			t.Errorf("member name %q, checkpointctl says %q", c.ours, c.theirs)
		}
	}
}

func TestCheckName(t *testing.T) {
	good := []string{"config.dump", "checkpoint/core-1.img", "volumes/data.tar", "a/b/c"}
	bad := []string{"", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a/", ".", "..", "a\\b", "a\x00b", "bad\xffutf8", "a\nb",
		string(make([]byte, MaxNameLength+1)), "1/2/3/4/5/6/7/8/9"}
	for _, n := range good {
		if err := CheckName(n); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", n, err)
		}
	}
	for _, n := range bad {
		if err := CheckName(n); err == nil {
			t.Errorf("CheckName(%q) = nil, want an error", n)
		}
	}
}

func TestKindOf(t *testing.T) {
	for name, want := range map[string]Kind{
		"config.dump":               KindConfig,
		"checkpoint/pages-1.img":    KindImage,
		"checkpoint/sub/x":          KindOther,
		"pre-checkpoint/core-1.img": KindPreImage,
		"volumes/data.tar":          KindVolume,
		"volumes/-bad.tar":          KindOther,
		"volumes/data":              KindOther,
		"etc/passwd":                KindOther,
		ManifestName:                KindManifest,
	} {
		if got := KindOf(name); got != want {
			t.Errorf("KindOf(%q) = %q, want %q", name, got, want)
		}
	}
}
