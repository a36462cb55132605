package criuimg

import "fmt"

// Process tree limits: CheckPstree refuses a tree over them, so that a
// hostile pstree.img cannot make a restore fork without bound.
const (
	// MaxTasks is the largest number of tasks (thread-group leaders) in
	// pstree.img.
	MaxTasks = 1 << 16
	// MaxThreads is the largest number of threads of all tasks together.
	MaxThreads = 1 << 20
	// MaxPID is the largest process ID Linux hands out (PID_MAX_LIMIT on
	// 64-bit kernels).
	MaxPID = 1 << 22
)

// CheckPstree checks the process tree CRIU restores from pstree.img, whose
// first task is the root: at least one and at most [MaxTasks] tasks, pids
// from 1 to [MaxPID], no pid twice, every task but the root has its parent
// in the tree and reaches the root through its parents (no cycle), the
// root's parent is not in the tree, parent, group and session ids are at
// most [MaxPID], a group leader in the tree is in the same session as its
// group's members, and a session leader in the tree leads its own session.
// Threads are not judged here: CRIU leaves garbage in the thread list of a
// zombie, which only the task's core image reveals; [CheckImages] checks
// the threads of live tasks. Every error wraps [ErrImage] and names the
// task; the caller names the file. Both [CheckImages] and the inspector
// use it, so a tree one refuses the other refuses too.
func CheckPstree(tasks []PstreeEntry) []error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format+": %w", append(args, ErrImage)...))
	}
	switch {
	case len(tasks) == 0:
		add("read process tree: no task")
		return errs
	case len(tasks) > MaxTasks:
		add("read process tree: %d tasks, more than %d", len(tasks), MaxTasks)
		return errs
	}
	byPID := make(map[uint32]int, len(tasks))
	for i, t := range tasks {
		if t.PID == 0 || t.PID > MaxPID {
			add("check task %d: pid out of range 1-%d", t.PID, MaxPID)
		}
		if t.PPID > MaxPID || t.PGID > MaxPID || t.SID > MaxPID {
			add("check task %d: parent %d, group %d or session %d out of range 0-%d", t.PID, t.PPID, t.PGID, t.SID, MaxPID)
		}
		if _, dup := byPID[t.PID]; dup {
			add("check task %d: listed twice", t.PID)
			continue
		}
		byPID[t.PID] = i
	}
	if j, ok := byPID[tasks[0].PPID]; ok {
		add("check task %d: the root task's parent %d is in the tree (a cycle through task %d)", tasks[0].PID, tasks[0].PPID, tasks[j].PID)
	}
	// state[i] is known for the root and after each walk: a walk stops at
	// a task already judged or on its own path (a cycle), so the whole
	// check is linear.
	const (
		unknown = iota
		onPath
		reachesRoot
		cut // parent missing or in a cycle
	)
	state := make([]uint8, len(tasks))
	state[0] = reachesRoot
	var path []int
	for i := range tasks {
		path = path[:0]
		j := i
		for state[j] == unknown {
			state[j] = onPath
			path = append(path, j)
			k, ok := byPID[tasks[j].PPID]
			if !ok {
				add("check task %d: parent %d not in the tree", tasks[j].PID, tasks[j].PPID)
				state[j] = cut
				break
			}
			j = k
		}
		verdict := state[j]
		if verdict == onPath {
			add("check task %d: its parents form a cycle and never reach the root task %d", tasks[j].PID, tasks[0].PID)
			verdict = cut
		}
		for _, k := range path {
			state[k] = verdict
		}
	}
	for _, t := range tasks {
		if j, ok := byPID[t.PGID]; ok && tasks[j].SID != t.SID {
			add("check task %d: session %d, but its group leader %d is in session %d", t.PID, t.SID, t.PGID, tasks[j].SID)
		}
		if j, ok := byPID[t.SID]; ok && tasks[j].SID != tasks[j].PID {
			add("check task %d: session %d, but task %d does not lead a session (its session is %d)", t.PID, t.SID, t.SID, tasks[j].SID)
		}
	}
	return errs
}
