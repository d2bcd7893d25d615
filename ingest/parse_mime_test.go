package ingest

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

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

// FuzzMimeQPEscapeRuns: the loop that decodes runs of escapes gives what
// the byte-wise decoder gives, through any chunking of source and
// destination.
func FuzzMimeQPEscapeRuns(f *testing.F) {
	f.Add([]byte("=D7=A9=D7=9C=D7=95=D7=9D =D7=A8=D7=91=\r\n=D7=94"), uint8(5), uint8(3))
	f.Add([]byte("a=3Db=\r\nc =\r\n=4=41=ZZ=\n=4"), uint8(1), uint8(1))
	f.Add([]byte(strings.Repeat("=41=42", 100)+"="), uint8(64), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, srcChunk, dstChunk uint8) {
		decode := func(byteWise bool) ([]byte, mimeDecodeStats) {
			var st mimeDecodeStats
			d := &mimeQPDecoder{st: &st, byteWise: byteWise}
			src := iotest.HalfReader(bytes.NewReader(in))
			if srcChunk%2 == 0 {
				src = iotest.OneByteReader(bytes.NewReader(in))
			}
			r := transform.NewReader(src, d)
			var out []byte
			buf := make([]byte, int(dstChunk)%17+1)
			for {
				n, err := r.Read(buf)
				out = append(out, buf[:n]...)
				if err != nil {
					return out, st
				}
			}
		}
		fast, fst := decode(false)
		slow, sst := decode(true)
		if !bytes.Equal(fast, slow) || fst != sst {
			t.Fatalf("%q: runs %q %+v, byte-wise %q %+v", in, fast, fst, slow, sst)
		}
		// Whole, in one Transform.
		dst := make([]byte, len(in)+3)
		var a, b mimeDecodeStats
		n1, _, _ := (&mimeQPDecoder{st: &a}).Transform(dst, in, true)
		got := bytes.Clone(dst[:n1])
		n2, _, _ := (&mimeQPDecoder{st: &b, byteWise: true}).Transform(dst, in, true)
		if !bytes.Equal(got, dst[:n2]) || a != b {
			t.Fatalf("%q whole: runs %q, byte-wise %q", in, got, dst[:n2])
		}
	})
}
