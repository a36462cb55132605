package inspect

import (
	"encoding/json"
	"io"
)

// JSONVersion is the version of the --json documents; it changes when a
// field is removed or changes meaning (additions keep it).
const JSONVersion = 1

// ShowJSON is show's --json document.
type ShowJSON struct {
	// Version is JSONVersion in every document.
	Version  int        `json:"version"`
	Archives []*Summary `json:"archives"`
}

// InspectJSON is inspect's --format json document.
type InspectJSON struct {
	Version  int           `json:"version"`
	Archives []*Inspection `json:"archives"`
}

// VerifyJSON is verify's --json document.
type VerifyJSON struct {
	Version  int             `json:"version"`
	Archives []*VerifyResult `json:"archives"`
}

// MemparseJSON is memparse's --json document; one of its lists is set
// depending on the mode.
type MemparseJSON struct {
	Version int    `json:"version"`
	Path    string `json:"path"`
	// Pod, Namespace and Container name a kubelet checkpoint's container.
	Pod       string     `json:"pod,omitempty"`
	Namespace string     `json:"namespace,omitempty"`
	Container string     `json:"container,omitempty"`
	Processes []MemUsage `json:"processes,omitempty"`
	Matches   []Match    `json:"matches,omitempty"`
}

// DiffJSON is diff's --format json document.
type DiffJSON struct {
	Version int `json:"version"`
	*Diff
}

// WriteJSON writes v as one indented JSON document.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
