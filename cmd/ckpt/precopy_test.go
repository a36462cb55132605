package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/engine"
)

// TestMemoryTrackingLine: ckpt check names the pre-copy method that the
// memory tracking result selects.
func TestMemoryTrackingLine(t *testing.T) {
	for _, tt := range []struct {
		r    engine.HostReport
		want string
	}{
		{engine.HostReport{MemoryTracking: true, PreCopy: engine.PreCopyPreDump}, "yes (soft-dirty) -> pre-copy: CRIU pre-dump"},
		{engine.HostReport{PreCopy: engine.PreCopyDedup}, "no (soft-dirty) -> pre-copy: full dump + page dedup"},
		{engine.HostReport{}, "no (soft-dirty)"},
	} {
		if got := memoryTrackingLine(&tt.r); got != tt.want {
			t.Errorf("memoryTrackingLine(%+v) = %q, want %q", tt.r, got, tt.want)
		}
	}
}

// TestPreCopyStatsJSON: --print-stats names the method as ckpt_pre_copy,
// and leaves it out of plain checkpoints.
func TestPreCopyStatsJSON(t *testing.T) {
	b, err := json.Marshal(checkpointContainerJSON{ID: "x", PreCopy: engine.PreCopyPreDump})
	if err != nil || !strings.Contains(string(b), `"ckpt_pre_copy":"criu-pre-dump"`) {
		t.Errorf("stats = %s (%v), want ckpt_pre_copy criu-pre-dump", b, err)
	}
	b, _ = json.Marshal(checkpointContainerJSON{ID: "x"})
	if strings.Contains(string(b), "ckpt_pre_copy") {
		t.Errorf("plain checkpoint stats = %s, want no ckpt_pre_copy", b)
	}
}
