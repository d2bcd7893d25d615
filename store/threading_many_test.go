package store

import (
	"context"
	"slices"
	"testing"
)

// TestTicketsByMessageIDs: several Message-IDs in one call, normalised as
// TicketByMessageID normalises them, "" for the unknown and the empty.
func TestTicketsByMessageIDs(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	if err := s.IndexMessageIDs(ctx, "ACME-0001", "<a@mail.example>", "b@mail.example"); err != nil {
		t.Fatal(err)
	}
	if err := s.IndexMessageIDs(ctx, "ACME-0002", "c@mail.example"); err != nil {
		t.Fatal(err)
	}
	got, err := s.TicketsByMessageIDs(ctx, []string{"c@mail.example", "<b@mail.example>", "", "none@mail.example", "a@mail.example"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ACME-0002", "ACME-0001", "", "", "ACME-0001"}
	for i, id := range []string{"c@mail.example", "<b@mail.example>", "", "none@mail.example", "a@mail.example"} {
		one, _, err := s.TicketByMessageID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if one != want[i] {
			t.Errorf("TicketByMessageID(%q) = %q, want %q", id, one, want[i])
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("TicketsByMessageIDs = %q, want %q", got, want)
	}
	if got, err := s.TicketsByMessageIDs(ctx, []string{""}); err != nil || !slices.Equal(got, []string{""}) {
		t.Errorf("empty only: %q, %v", got, err)
	}
}
