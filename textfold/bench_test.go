package textfold

import (
	"strings"
	"testing"
)

func BenchmarkFoldBody(b *testing.B) {
	body := strings.Repeat("Hello team, since this morning the second floor printer shows an error and nobody can print. ", 20) + "שלום, המדפסת בקומה השנייה לא מדפיסה מהבוקר.\n"
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		Fold(body)
	}
}
