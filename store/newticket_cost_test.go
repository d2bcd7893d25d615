package store

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/domain"
)

// TestJSONMembersFastPath: cutting the empty id off the encoded ticket gives
// the same members as decoding, deleting and encoding again.
func TestJSONMembersFastPath(t *testing.T) {
	tickets := []domain.Ticket{
		{},
		{Contract: "acme", Category: "fault", Priority: "high", Subject: `quote " and "id": inside <b>&`, Opened: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC),
			Rules: []string{"vip", "outage"}},
		{Contract: "globex", Subject: "שלום", IMACDate: "2026-12-01", IMACQuotaUse: 3, Billable: true},
	}
	for i, tk := range tickets {
		got, err := jsonMembers(tk, "id")
		if err != nil {
			t.Fatal(err)
		}
		var gotM, wantM map[string]any
		if err := json.Unmarshal([]byte("{"+got+"}"), &gotM); err != nil {
			t.Fatalf("ticket %d: %q is not a member list: %v", i, got, err)
		}
		b, _ := json.Marshal(tk)
		if err := json.Unmarshal(b, &wantM); err != nil {
			t.Fatal(err)
		}
		delete(wantM, "id")
		if !reflect.DeepEqual(gotM, wantM) {
			t.Errorf("ticket %d:\n got %v\nwant %v", i, gotM, wantM)
		}
	}
}
