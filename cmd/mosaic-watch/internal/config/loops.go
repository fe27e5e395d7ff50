package config

import "strings"

// validateLoops refuses folders that feed each other: when a folder's outputs land in the
// input of a folder whose outputs lead, folder by folder, back into the first one's input,
// every file is processed (and billed) again and again. A one-way chain (A's output is B's
// input) is how agents are chained, and is fine. (Move targets inside any input are refused by
// validateOverlaps already.)
func (l *loader) validateLoops() {
	n := len(l.folders)
	feeds := make([][]int, n) // feeds[i]: folders whose input receives folder i's outputs
	for i := range l.folders {
		a := l.folders[i].f
		for j := range l.folders {
			b := l.folders[j].f
			if i == j || a.Output == "" || b.Input == "" {
				continue
			}
			if samePath(a.Output, b.Input) || (b.Recursive && inside(a.Output, b.Input)) {
				feeds[i] = append(feeds[i], j)
			}
		}
	}
	for i := range l.folders {
		for _, j := range feeds[i] {
			back := pathBack(feeds, j, i)
			if back == nil {
				continue
			}
			a, b := &l.folders[i], &l.folders[j]
			at := a.where("output")
			l.problem(at.path, at.line, "folder loop: the outputs of %s %q (line %d) go into the input "+
				"of %s %q (line %d), and the outputs from there come back into this folder's input "+
				"(%s): every file would be processed, and billed, again and again. Chain folders one way only",
				a.path, a.f.Name, a.line, b.path, b.f.Name, b.line, l.chain(append([]int{i}, back...)))
		}
	}
}

// pathBack returns the folders from `from` to `to` along feeds (both included), or nil.
func pathBack(feeds [][]int, from, to int) []int {
	prev := map[int]int{from: -1}
	queue := []int{from}
	for len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		if k == to {
			var path []int
			for ; k != -1; k = prev[k] {
				path = append([]int{k}, path...)
			}
			return path
		}
		for _, next := range feeds[k] {
			if _, seen := prev[next]; !seen {
				prev[next] = k
				queue = append(queue, next)
			}
		}
	}
	return nil
}

// chain names a loop of folders: "folders[0] → folders[1] → folders[0]".
func (l *loader) chain(idx []int) string {
	names := make([]string, len(idx))
	for k, i := range idx {
		names[k] = l.folders[i].path
	}
	return strings.Join(names, " → ")
}
