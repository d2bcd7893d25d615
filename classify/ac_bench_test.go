package classify

import (
	"testing"

	"github.com/northwind-it/ticketgw/textfold"
)

func BenchmarkScanText(b *testing.B) {
	c := New(benchConfig(b, 200))
	m := benchMessage()
	g := c.fs.group
	text := textfold.Fold(m.Subject) + " " + textfold.Fold(m.Text)
	n := 0
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.m.scanReport(0, text, 0, func(int32, int) { n++ })
	}
	if n == 0 {
		b.Fatal("no keywords found")
	}
}
