package ingest

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"golang.org/x/text/transform"
)

// FuzzMimeDecodeReader holds the reusable decoding reader to x/text's
// transform.Reader: the same bytes, errors and decode statistics, read in
// chunks of any size, for a fresh reader and one reused after another part.
func FuzzMimeDecodeReader(f *testing.F) {
	f.Add([]byte("SGVsbG8gd29ybGQ=\r\nIQ==\r\n"), []byte("a=3Db=\r\nc =\r\n"), uint8(7), true)
	f.Add([]byte(strings.Repeat("QUJD", 3000)), []byte(strings.Repeat("x=41", 2500)), uint8(1), false)
	f.Add([]byte("not base64 at all !!"), []byte("=ZZ=4"), uint8(200), true)
	f.Fuzz(func(t *testing.T, a, b []byte, chunk uint8, qpFirst bool) {
		size := int(chunk)%64 + 1
		read := func(r io.Reader) ([]byte, error) {
			var out []byte
			buf := make([]byte, size)
			for {
				n, err := r.Read(buf)
				out = append(out, buf[:n]...)
				if err == io.EOF {
					return out, nil
				}
				if err != nil {
					return out, err
				}
			}
		}
		sc := &parseScratch{}
		ctes := []string{"base64", "quoted-printable"}
		if qpFirst {
			ctes[0], ctes[1] = ctes[1], ctes[0]
		}
		for i, in := range [][]byte{a, b} {
			cte := ctes[i]
			var wst, gst mimeDecodeStats
			var wt transform.Transformer = &mimeB64Decoder{st: &wst}
			if cte == "quoted-printable" {
				wt = &mimeQPDecoder{st: &wst}
			}
			want, werr := read(transform.NewReader(bytes.NewReader(in), wt))
			dec := sc.decoder(cte, bytes.NewReader(in), &gst)
			got, gerr := read(dec)
			sc.releaseDecoder(dec)
			if !bytes.Equal(got, want) || (werr == nil) != (gerr == nil) || wst != gst {
				t.Fatalf("%s %q: got %q %v %+v, want %q %v %+v", cte, in, got, gerr, gst, want, werr, wst)
			}
		}
	})
}
