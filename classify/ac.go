package classify

// An Aho–Corasick automaton over the folded keywords of one field, compiled
// into a dense DFA on byte classes: one table look-up per byte of text, so
// that a message is scanned once per field however many rules and keywords
// there are (SPEC targets 200 rules in well under 20 µs).

type acMatcher struct {
	class  [256]uint8
	nclass int
	// delta[row+class] is the row of the next state, a state's row being
	// state*nclass; its sign bit (outFlag) is set when the next state or a
	// state on its failure chain has outputs, so that the scan loop makes
	// one table look-up per byte and nothing else.
	delta []int32
	// outIDs[outAt[s]:outAt[s+1]] are the ids of the keywords that end
	// exactly at state s.
	outAt  []int32
	outIDs []int32
	dict   []int32 // next state on the failure chain that has outputs (-1: none)
	nkw    int
	// maxLen is the length of the longest keyword: from state 0 at any
	// position, the automaton is in the right state maxLen-1 bytes later.
	maxLen int
}

const outFlag = -1 << 31 // sign bit of a delta entry

// buildMatcher compiles keywords (already folded; duplicates allowed) into a
// matcher. Keyword i is reported as id i.
func buildMatcher(keywords []string) *acMatcher {
	m := &acMatcher{nkw: len(keywords)}
	// Byte classes: every byte that occurs in a keyword gets its own class;
	// all other bytes share class 0.
	var used [256]bool
	for _, k := range keywords {
		m.maxLen = max(m.maxLen, len(k))
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
	out := [][]int32{nil}
	for id, k := range keywords {
		s := int32(0)
		for i := 0; i < len(k); i++ {
			c := int(m.class[k[i]])
			nx, ok := trie[s].next[c]
			if !ok {
				nx = int32(len(trie))
				trie = append(trie, trieNode{next: map[int]int32{}})
				out = append(out, nil)
				trie[s].next[c] = nx
			}
			s = nx
		}
		out[s] = append(out[s], int32(id))
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
		if len(out[f]) > 0 {
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
	m.outAt = make([]int32, 0, n+1)
	for _, ids := range out {
		m.outAt = append(m.outAt, int32(len(m.outIDs)))
		m.outIDs = append(m.outIDs, ids...)
	}
	m.outAt = append(m.outAt, int32(len(m.outIDs)))
	// States to rows, flagged when a match ends there.
	for i, nx := range m.delta {
		v := nx * int32(m.nclass)
		if len(out[nx]) > 0 || m.dict[nx] >= 0 {
			v |= outFlag
		}
		m.delta[i] = v
	}
	return m
}

// scanFrom marks in hits (len nkw) every keyword that occurs in s, starting
// from row (0 at the start of a text), and returns the row at the end of s:
// scanning t after s from that row finds the keywords of s+t.
func (m *acMatcher) scanFrom(row int32, s string, hits []bool) int32 {
	return m.scanReport(row, s, 0, func(id int32, _ int) { hits[id] = true })
}

// scanReport is scanFrom for callers that need the positions: it calls
// found(id, base+end) for every occurrence of keyword id that ends at byte
// end of s (exclusive). An occurrence may be reported more than once.
//
// Each step of a scan waits for the table look-up of the step before, so a
// long text is cut into four stretches scanned together, which lets the
// processor overlap their look-ups. Each stretch but the first starts in
// state 0 and overlaps the one before it by maxLen-1 bytes, enough for the
// automaton to reach the state that a scan from the start would be in; the
// occurrences found in the overlap are found twice.
func (m *acMatcher) scanReport(row int32, s string, base int, found func(id int32, end int)) int32 {
	w := m.maxLen - 1
	if len(s) < 4*w+256 {
		return m.scan1(row, s, 0, base, found)
	}
	class, delta := &m.class, m.delta
	c := (len(s) - w) / 4 // stretch j starts at j*c; all but the last run n bytes
	n := c + w
	s0, s1, s2, s3 := s[:n], s[c:c+n], s[2*c:2*c+n], s[3*c:3*c+n]
	var r1, r2, r3 int32
	r0 := row
	for i := 0; i < n; i++ {
		v0 := delta[r0+int32(class[s0[i]])]
		v1 := delta[r1+int32(class[s1[i]])]
		v2 := delta[r2+int32(class[s2[i]])]
		v3 := delta[r3+int32(class[s3[i]])]
		r0, r1, r2, r3 = v0&^outFlag, v1&^outFlag, v2&^outFlag, v3&^outFlag
		if v0|v1|v2|v3 < 0 {
			if v0 < 0 {
				m.report(r0, base+i+1, found)
			}
			if v1 < 0 {
				m.report(r1, base+c+i+1, found)
			}
			if v2 < 0 {
				m.report(r2, base+2*c+i+1, found)
			}
			if v3 < 0 {
				m.report(r3, base+3*c+i+1, found)
			}
		}
	}
	return m.scan1(r3, s, 3*c+n, base, found)
}

// scan1 scans s[from:] from row in a single stretch.
func (m *acMatcher) scan1(row int32, s string, from, base int, found func(id int32, end int)) int32 {
	class, delta := &m.class, m.delta
	for i := from; i < len(s); i++ {
		v := delta[row+int32(class[s[i]])]
		row = v &^ outFlag
		if v < 0 {
			m.report(row, base+i+1, found)
		}
	}
	return row
}

// report calls found for every keyword that ends in the state of row.
func (m *acMatcher) report(row int32, end int, found func(id int32, end int)) {
	for st := row / int32(m.nclass); st >= 0; st = m.dict[st] {
		for _, id := range m.outIDs[m.outAt[st]:m.outAt[st+1]] {
			found(id, end)
		}
	}
}
