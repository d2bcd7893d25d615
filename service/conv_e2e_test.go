package service_test

import (
	"testing"
)

func TestConvExplore(t *testing.T) {
	ctx := convContext(t)
	e := newConvEnv(t, ctx, convSetup{})
	tk, ack, fwd := e.open(convCustomer("c1@mail.acme.co.il", "Printer on floor 2 not working", "Hello,\nthe printer is broken.\nYossi\n", convAt(1, 9, 0)))
	t.Logf("ticket %+v", tk)
	t.Logf("ack %s\n%s", ack, ack.Raw)
	t.Logf("fwd %s\nTEXT:\n%s", fwd, fwd.Msg.Text)
	r := convStaffReply(fwd, "#resolve\nHi Yossi, the printer works again.", convAt(1, 10, 0))
	e.deliver(r)
	e.settle()
	for _, m := range e.take() {
		t.Logf("%s\n%s", m, m.Raw)
	}
	t.Logf("events %+v", e.events(tk.ID))
}
