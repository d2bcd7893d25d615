package report

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/store"
)

// TestRecount recounts the main figures from the raw tickets and events
// with a separate, plain implementation and finds them equal to Build's.
func TestRecount(t *testing.T) {
	for _, s := range scenarios {
		if s.lang != "" {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			r, spec, tickets := s.build(t)
			loc := spec.contract.Calendar.Loc
			q, _ := ParseQuarter(s.quarter)
			asOf := r.AsOf
			qy, qm := q.Year, time.Month(3*q.Q-2)
			pq := q.Prev()
			py, pm := pq.Year, time.Month(3*pq.Q-2)
			inQ := func(tm time.Time, y int, m time.Month) bool {
				l := tm.In(loc)
				return l.Year() == y && l.Month() >= m && l.Month() < m+3 && !tm.After(asOf)
			}
			cat, prevCat, prio := map[string]int{}, map[string]int{}, map[string]int{}
			month := map[string]int{}
			req, rul := map[string]int{}, map[string]int{}
			reopened := 0
			respMet, respMissed := map[string]int{}, map[string]int{}
			total := 0
			for _, tw := range tickets {
				tk := tw.Ticket
				status := ""
				for _, ev := range tw.Events {
					if ev.At.After(asOf) {
						continue
					}
					if ev.Kind == domain.EventReopened && (status == "resolved" || status == "closed") && inQ(ev.At, qy, qm) {
						reopened++
					}
					switch ev.Kind {
					case domain.EventResolved:
						status = "resolved"
					case domain.EventClosed:
						status = "closed"
					case domain.EventReopened, domain.EventPending:
						status = string(ev.Kind)
					}
				}
				if inQ(tk.Opened, py, pm) {
					prevCat[string(tk.Category)]++
				}
				if !inQ(tk.Opened, qy, qm) {
					continue
				}
				total++
				cat[string(tk.Category)]++
				prio[string(tk.Priority)]++
				month[tk.Opened.In(loc).Format("2006-01")]++
				req[strings.ToLower(tk.Requester.Addr)]++
				for _, ev := range tw.Events {
					if ev.Kind == domain.EventOpened {
						for _, x := range strings.Split(ev.Data["rules"], ",") {
							rul[x]++
						}
						break
					}
				}
				if tk.ResponseDue.IsZero() {
					continue
				}
				var first time.Time
				for _, ev := range tw.Events {
					if ev.Kind == domain.EventResponse && !ev.At.After(asOf) && (first.IsZero() || ev.At.Before(first)) {
						first = ev.At
					}
				}
				switch {
				case !first.IsZero() && !first.After(tk.ResponseDue):
					respMet[string(tk.Category)]++
				case !first.IsZero() || !asOf.Before(tk.ResponseDue):
					respMissed[string(tk.Category)]++
				}
			}
			if r.Total.Count != total {
				t.Errorf("total %d, recount %d", r.Total.Count, total)
			}
			for _, c := range r.ByCategory {
				if c.Count != cat[c.Key] || c.Previous != prevCat[c.Key] {
					t.Errorf("category %s: %d/%d, recount %d/%d", c.Key, c.Count, c.Previous, cat[c.Key], prevCat[c.Key])
				}
			}
			for _, c := range r.ByPriority {
				if c.Count != prio[c.Key] {
					t.Errorf("priority %s: %d, recount %d", c.Key, c.Count, prio[c.Key])
				}
			}
			for _, m := range r.Months {
				if m.Total != month[m.Key] {
					t.Errorf("month %s: %d, recount %d", m.Key, m.Total, month[m.Key])
				}
			}
			weekSum := 0
			for _, w := range r.Weeks {
				weekSum += w.Total
			}
			if weekSum != total {
				t.Errorf("weeks sum to %d, recount %d", weekSum, total)
			}
			checkTop(t, "requester", r.Requesters, req)
			checkTop(t, "rule", r.Rules, rul)
			if r.Reopened.Events != reopened {
				t.Errorf("reopened %d, recount %d", r.Reopened.Events, reopened)
			}
			for _, c := range r.SLA {
				k := string(c.Category)
				if c.Response.Met != respMet[k] || c.Response.Missed != respMissed[k] {
					t.Errorf("%s response met/missed %d/%d, recount %d/%d", k, c.Response.Met, c.Response.Missed, respMet[k], respMissed[k])
				}
			}
		})
	}
}

func checkTop(t *testing.T, what string, got []Ranked, counts map[string]int) {
	t.Helper()
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range counts {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].v != all[j].v {
			return all[i].v > all[j].v
		}
		return all[i].k < all[j].k
	})
	if len(all) > DefaultTop {
		all = all[:DefaultTop]
	}
	if len(got) != len(all) {
		t.Fatalf("%s ranking has %d entries, recount %d", what, len(got), len(all))
	}
	for i := range all {
		if got[i].Key != all[i].k || got[i].Count != all[i].v {
			t.Errorf("%s #%d: %s=%d, recount %s=%d", what, i+1, got[i].Key, got[i].Count, all[i].k, all[i].v)
		}
	}
}

// TestLoad stores tickets and events through the store and reads them back
// with Load: the report built from Redis equals the one built in memory.
func TestLoad(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	st := store.New(rdb, "tgtest:")
	ctx := context.Background()
	spec := globexSpec(t)
	tickets := generate(t, spec)
	for i, tw := range tickets {
		nt := store.NewTicket{Ticket: tw.Ticket, Prefix: spec.contract.Prefix, DedupKey: "mid:" + tw.Ticket.MessageID, Event: tw.Events[0]}
		got, _, err := st.CreateTicket(ctx, nt)
		if err != nil {
			t.Fatal(err)
		}
		tickets[i].Ticket.ID = got.ID
		for j, ev := range tw.Events[1:] {
			if _, err := st.AppendEvent(ctx, got.ID, ev, ""); err != nil {
				t.Fatalf("append event %d of %s: %v", j, got.ID, err)
			}
		}
	}
	loaded, err := Load(ctx, st, spec.contract.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != len(tickets) {
		t.Fatalf("loaded %d tickets, stored %d", len(loaded), len(tickets))
	}
	q, _ := ParseQuarter("2026-Q3")
	want, err := Build(Input{Contract: spec.contract, Quarter: q, Tickets: tickets, AsOf: spec.asOf})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Build(Input{Contract: spec.contract, Quarter: q, Tickets: loaded, AsOf: spec.asOf})
	if err != nil {
		t.Fatal(err)
	}
	// Times come back in UTC from Redis; compare the figures.
	got.AsOf, want.AsOf = time.Time{}, time.Time{}
	if got.String() != want.String() {
		t.Errorf("report from Redis differs from the report in memory:\n got %s\nwant %s", got, want)
	}
}
