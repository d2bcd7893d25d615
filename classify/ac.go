package classify

// An Aho–Corasick automaton over the folded keywords of one field, compiled
// into a dense DFA on byte classes: one table look-up per byte of text, so
// that a message is scanned once per field however many rules and keywords
// there are (SPEC targets 200 rules in well under 20 µs).

type acMatcher struct {
	class   [256]uint8
	nclass  int
	delta   []int32   // state*nclass + class -> next state
	out     [][]int32 // keyword ids ending exactly at a state
	dict    []int32   // next state on the failure chain that has outputs (-1: none)
	nkw     int
	maxHits int
}

// buildMatcher compiles keywords (already folded; duplicates allowed) into a
// matcher. Keyword i is reported as id i.
func buildMatcher(keywords []string) *acMatcher {
	m := &acMatcher{nkw: len(keywords)}
	// Byte classes: every byte that occurs in a keyword gets its own class;
	// all other bytes share class 0.
	var used [256]bool
	for _, k := range keywords {
		for i := 0; i < len(k); i++ {
			used[k[i]] = true
		}
	}
	m.nclass = 1
	for b := 0; b < 256; b++ {
		if used[b] {
			m.class[b] = uint8(m.nclass)
			m.nclass++
			if m.nclass == 256 {
				break
			}
		}
	}
	// Trie.
	type trieNode struct{ next map[int]int32 }
	trie := []trieNode{{next: map[int]int32{}}}
	m.out = [][]int32{nil}
	for id, k := range keywords {
		s := int32(0)
		for i := 0; i < len(k); i++ {
			c := int(m.class[k[i]])
			nx, ok := trie[s].next[c]
			if !ok {
				nx = int32(len(trie))
				trie = append(trie, trieNode{next: map[int]int32{}})
				m.out = append(m.out, nil)
				trie[s].next[c] = nx
			}
			s = nx
		}
		m.out[s] = append(m.out[s], int32(id))
	}
	n := len(trie)
	m.delta = make([]int32, n*m.nclass)
	fail := make([]int32, n)
	m.dict = make([]int32, n)
	for i := range m.dict {
		m.dict[i] = -1
	}
	// BFS to fill the DFA and failure links.
	queue := make([]int32, 0, n)
	for c := 0; c < m.nclass; c++ {
		if nx, ok := trie[0].next[c]; ok {
			m.delta[c] = nx
			fail[nx] = 0
			queue = append(queue, nx)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		f := fail[s]
		if len(m.out[f]) > 0 {
			m.dict[s] = f
		} else {
			m.dict[s] = m.dict[f]
		}
		for c := 0; c < m.nclass; c++ {
			if nx, ok := trie[s].next[c]; ok {
				fail[nx] = m.delta[int(f)*m.nclass+c]
				m.delta[int(s)*m.nclass+c] = nx
				queue = append(queue, nx)
			} else {
				m.delta[int(s)*m.nclass+c] = m.delta[int(f)*m.nclass+c]
			}
		}
	}
	return m
}

// scan marks in hits (len nkw) every keyword that occurs in s.
func (m *acMatcher) scan(s string, hits []bool) {
	state := int32(0)
	nc := int32(m.nclass)
	for i := 0; i < len(s); i++ {
		state = m.delta[state*nc+int32(m.class[s[i]])]
		if len(m.out[state]) == 0 && m.dict[state] < 0 {
			continue
		}
		for st := state; st >= 0; st = m.dict[st] {
			for _, id := range m.out[st] {
				hits[id] = true
			}
		}
	}
}
