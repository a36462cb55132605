package main

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/ckpt/ckpt/engine"
)

// psRow is what `ps --format` templates see, in podman's field names.
type psRow struct {
	ID           string   // container ID (12 digits; 64 with --no-trunc)
	Names        string   // container name
	Image        string   // image name as given to run
	ImageID      string   // image ID
	Command      string   // the command, joined with spaces
	Created      string   // creation time, "2006-01-02 15:04:05 -0700 MST"
	CreatedAt    string   // the same
	CreatedHuman string   // creation time, relative ("5 minutes ago")
	Status       string   // "Up 5 minutes", "Exited (0) 2 minutes ago", "Created", "Checkpointed 1 minute ago"
	State        string   // created, running, exited or checkpointed
	ExitCode     int      // the init process' exit status
	Exited       bool     // whether the container has exited
	ExitedAt     int64    // when it exited (Unix seconds; 0 if not)
	StartedAt    int64    // when it last started (Unix seconds; 0 if never)
	RunningFor   string   // time since creation ("5 minutes")
	Pid          int      // init's host PID while running
	Mounts       []string // mount destinations
	Networks     []string // network mode (none or host)
}

// psHeaders are the column names of `--format "table ..."`.
var psHeaders = map[string]string{"ID": "CONTAINER ID", "Names": "NAMES", "ImageID": "IMAGE ID", "CreatedAt": "CREATED AT",
	"CreatedHuman": "CREATED", "RunningFor": "RUNNING FOR", "ExitCode": "EXIT CODE", "ExitedAt": "EXITED AT", "StartedAt": "STARTED AT"}

func newPSRow(x *engine.Container, noTrunc bool, now time.Time) psRow {
	r := psRow{
		ID: x.ID, Names: x.Name, Image: x.Image, ImageID: x.ImageID, Command: strings.Join(x.Command, " "),
		Created:      x.CreatedAt.Local().Format("2006-01-02 15:04:05 -0700 MST"),
		CreatedHuman: ago(now.Sub(x.CreatedAt)), State: string(x.Status), ExitCode: x.ExitCode,
		Exited: x.Status == engine.StatusExited, RunningFor: since(now.Sub(x.CreatedAt)), Pid: x.PID,
		Mounts: []string{}, Networks: []string{x.Network},
	}
	r.CreatedAt = r.Created
	if !noTrunc {
		r.ID, r.ImageID = shortID(r.ID), shortID(r.ImageID)
	}
	if !x.StartedAt.IsZero() {
		r.StartedAt = x.StartedAt.Unix()
	}
	if r.Exited && !x.FinishedAt.IsZero() {
		r.ExitedAt = x.FinishedAt.Unix()
	}
	if x.Status != engine.StatusRunning {
		r.Pid = 0
	}
	for _, m := range x.Mounts {
		r.Mounts = append(r.Mounts, m.Destination)
	}
	switch x.Status {
	case engine.StatusRunning:
		r.Status = "Up " + since(now.Sub(x.StartedAt))
	case engine.StatusExited:
		r.Status = fmt.Sprintf("Exited (%d) %s", x.ExitCode, ago(now.Sub(x.FinishedAt)))
	case engine.StatusCheckpointed:
		r.Status = "Checkpointed " + ago(now.Sub(x.CheckpointedAt))
	default:
		r.Status = "Created"
	}
	return r
}

// since is a duration in podman's human words ("About a minute").
func since(d time.Duration) string {
	switch s := d.Seconds(); {
	case s < 1:
		return "Less than a second"
	case s < 60:
		return fmt.Sprintf("%d seconds", int(s))
	case d.Minutes() < 2:
		return "About a minute"
	case d.Minutes() < 60:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	case d.Hours() < 2:
		return "About an hour"
	case d.Hours() < 48:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func ago(d time.Duration) string { return since(d) + " ago" }

// psTemplate compiles a --format other than json: "table " before the
// template adds a header line and aligns the columns; "\t" and "\n" typed
// as two characters are a tab and a newline, as in podman.
func psTemplate(format string) (tmpl *template.Template, table bool, err error) {
	format, table = strings.CutPrefix(format, "table")
	if table {
		format = strings.TrimLeft(format, " ")
		if format == "" {
			format = `{{.ID}}\t{{.Names}}\t{{.Image}}\t{{.Command}}\t{{.CreatedHuman}}\t{{.Status}}`
		}
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	if tmpl, err = template.New("format").Funcs(templateFuncs).Parse(format); err != nil {
		return nil, false, err
	}
	// A field ps does not have is a usage error before anything runs.
	if err := tmpl.Execute(io.Discard, psRow{Mounts: []string{}, Networks: []string{}}); err != nil {
		return nil, false, err
	}
	return tmpl, table, nil
}

// psHeader is the header of a table: each field's column name.
func psHeader() map[string]string {
	h := map[string]string{}
	t := reflect.TypeFor[psRow]()
	for i := range t.NumField() {
		name := t.Field(i).Name
		if v, ok := psHeaders[name]; ok {
			h[name] = v
			continue
		}
		h[name] = strings.ToUpper(name)
	}
	return h
}

// printPS prints rows through tmpl, one line each.
func printPS(w io.Writer, rows []psRow, tmpl *template.Template, table bool) error {
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		out = tw
		// A template that needs a field's type (join .Mounts) has no header.
		var b strings.Builder
		if err := tmpl.Execute(&b, psHeader()); err == nil {
			fmt.Fprintln(out, strings.TrimSuffix(b.String(), "\n"))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		if err := tmpl.Execute(&b, r); err != nil {
			return err
		}
		fmt.Fprintln(out, strings.TrimSuffix(b.String(), "\n"))
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// psFormatted prints ps -q (IDs only) or ps --format.
func psFormatted(env *cmdEnv, c *command, shown []*engine.Container, quiet bool, format string, noTrunc bool) int {
	now := time.Now()
	rows := []psRow{}
	for _, x := range shown {
		rows = append(rows, newPSRow(x, noTrunc, now))
	}
	if quiet {
		format = "{{.ID}}"
	}
	if format == "json" {
		if err := writeJSON(env.stdout, rows); err != nil {
			return env.fail(err)
		}
		return exitOK
	}
	tmpl, table, err := psTemplate(format)
	if err != nil {
		return usageError(env, c, "--format: %v", err)
	}
	if err := printPS(env.stdout, rows, tmpl, table); err != nil {
		return env.fail(fmt.Errorf("--format: %w", err))
	}
	return exitOK
}
