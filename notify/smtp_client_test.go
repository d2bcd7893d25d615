package notify

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// smtpScripted is a scripted SMTP server for one session: it answers each
// line the client sends with the reply that answer gives, and records the
// lines. It checks what the go-smtp catcher cannot show: how the commands
// were grouped into writes, and replies no real server gives.
type smtpScripted struct {
	t      *testing.T
	ln     net.Listener
	answer func(line string, s *smtpScriptedState) []string
	mu     sync.Mutex
	lines  []string
	data   []string // each message's data, as received (dot-stuffed)
	done   chan struct{}
}

// smtpScriptedState is what answer can see and change: whether the session
// is inside DATA, and whether to hold replies until a line arrives.
type smtpScriptedState struct {
	holdUntil string   // when set, replies are held until a line with this prefix
	held      []string // replies held so far
}

func newSMTPScripted(t *testing.T, answer func(line string, st *smtpScriptedState) []string) *smtpScripted {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpScripted{t: t, ln: ln, answer: answer, done: make(chan struct{})}
	go s.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		<-s.done
	})
	return s
}

func (s *smtpScripted) config() SMTPConfig {
	a := s.ln.Addr().(*net.TCPAddr)
	return SMTPConfig{Host: "127.0.0.1", Port: a.Port, TLS: SMTPTLSNone, Timeout: 5 * time.Second, HELO: "gateway.test"}
}

func (s *smtpScripted) serve() {
	defer close(s.done)
	conn, err := s.ln.Accept()
	if err != nil {
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	tc := textproto.NewConn(conn)
	st := &smtpScriptedState{}
	send := func(replies []string) bool {
		for _, r := range replies {
			if err := tc.PrintfLine("%s", r); err != nil {
				return false
			}
		}
		return true
	}
	if !send([]string{"220 scripted ESMTP"}) {
		return
	}
	for {
		line, err := tc.ReadLine()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.lines = append(s.lines, line)
		s.mu.Unlock()
		if f := strings.Fields(line); len(f) >= 2 && strings.EqualFold(f[0], "BDAT") {
			// The chunk follows the command, whatever the reply.
			n, err := strconv.Atoi(f[1])
			if err != nil {
				return
			}
			chunk := make([]byte, n)
			if _, err := io.ReadFull(tc.R, chunk); err != nil {
				return
			}
			s.mu.Lock()
			s.data = append(s.data, string(chunk))
			s.mu.Unlock()
		}
		replies := s.answer(line, st)
		if strings.HasPrefix(line, "DATA") && len(replies) == 1 && strings.HasPrefix(replies[0], "354") && st.holdUntil == "" {
			if !send(replies) || !s.readData(tc) {
				return
			}
			replies = s.answer(".", st)
		}
		if st.holdUntil != "" {
			st.held = append(st.held, replies...)
			if !strings.HasPrefix(line, st.holdUntil) {
				continue
			}
			replies, st.held, st.holdUntil = st.held, nil, ""
			if !send(replies) {
				return
			}
			if last := replies[len(replies)-1]; strings.HasPrefix(last, "354") {
				// The data follows the held replies.
				if !s.readData(tc) {
					return
				}
				replies = s.answer(".", st)
			} else {
				continue
			}
		}
		if !send(replies) {
			return
		}
		if strings.HasPrefix(line, "QUIT") {
			return
		}
	}
}

// readData reads one message's data up to the ending "." and records it.
func (s *smtpScripted) readData(tc *textproto.Conn) bool {
	var b bytes.Buffer
	for {
		l, err := tc.ReadLine()
		if err != nil {
			return false
		}
		if l == "." {
			break
		}
		b.WriteString(l + "\n")
	}
	s.mu.Lock()
	s.data = append(s.data, b.String())
	s.mu.Unlock()
	return true
}

func (s *smtpScripted) got() (lines, data []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...), append([]string(nil), s.data...)
}

// smtpScriptedBasic answers like a plain server that offers exts; rcptReply
// maps a recipient to its reply (default 250).
func smtpScriptedBasic(exts []string, rcptReply map[string]string, dataReply string) func(string, *smtpScriptedState) []string {
	return func(line string, st *smtpScriptedState) []string {
		switch {
		case strings.HasPrefix(line, "EHLO"):
			out := []string{"250-scripted"}
			for _, e := range exts {
				out = append(out, "250-"+e)
			}
			out[len(out)-1] = "250 " + strings.TrimPrefix(out[len(out)-1], "250-")
			if len(exts) == 0 {
				out = []string{"250 scripted"}
			}
			return out
		case strings.HasPrefix(line, "MAIL"):
			return []string{"250 2.1.0 ok"}
		case strings.HasPrefix(line, "RCPT"):
			addr := strings.TrimSuffix(strings.TrimPrefix(line, "RCPT TO:<"), ">")
			if r, ok := rcptReply[addr]; ok {
				return []string{r}
			}
			return []string{"250 2.1.5 ok"}
		case strings.HasPrefix(line, "DATA"):
			if dataReply != "" {
				return []string{dataReply}
			}
			return []string{"354 go ahead"}
		case line == ".":
			return []string{"250 2.0.0 queued"}
		case strings.HasPrefix(line, "BDAT"):
			if dataReply != "" && !strings.HasPrefix(dataReply, "354") {
				return []string{dataReply}
			}
			return []string{"250 2.0.0 queued"}
		case strings.HasPrefix(line, "QUIT"):
			return []string{"221 bye"}
		case strings.HasPrefix(line, "RSET"), strings.HasPrefix(line, "NOOP"):
			return []string{"250 ok"}
		}
		return []string{"502 5.5.2 unknown"}
	}
}

// TestSendPipelinesTheEnvelope: with PIPELINING the server gets MAIL, the
// RCPTs and DATA before it answers any of them (this server holds every
// reply until DATA arrives: a client waiting for the reply to MAIL would
// hang until the deadline).
func TestSendPipelinesTheEnvelope(t *testing.T) {
	basic := smtpScriptedBasic([]string{"PIPELINING", "8BITMIME", "SIZE 1000000"}, nil, "")
	srv := newSMTPScripted(t, func(line string, st *smtpScriptedState) []string {
		if strings.HasPrefix(line, "MAIL") {
			st.holdUntil = "DATA"
		}
		return basic(line, st)
	})
	s := smtpNewSender(t, srv.config())
	raw := []byte("Subject: x\r\n\r\n.leading dot\r\nbody\r\n")
	env := Envelope{From: "support@northwind-it.example", To: []string{"a@acme.example", "b@acme.example"}}
	if err := s.Send(t.Context(), env, raw); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	lines, data := srv.got()
	want := []string{"EHLO gateway.test", "MAIL FROM:<support@northwind-it.example> BODY=8BITMIME SIZE=34",
		"RCPT TO:<a@acme.example>", "RCPT TO:<b@acme.example>", "DATA", "QUIT"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("commands:\n got %q\nwant %q", lines, want)
	}
	if len(data) != 1 || data[0] != "Subject: x\n\n..leading dot\nbody\n" {
		t.Errorf("data = %q", data)
	}
}

// TestSendWithoutPipelining: a server that does not offer PIPELINING gets
// one command at a time, and the envelope's outcomes are the same.
func TestSendWithoutPipelining(t *testing.T) {
	tests := []struct {
		name      string
		rcpt      map[string]string
		dataReply string
		wantOp    string // "" for success, "recipients" for a RecipientError
		wantLines string
	}{
		{"accepted", nil, "", "", "EHLO gateway.test|MAIL FROM:<s@x.example>|RCPT TO:<a@y.example>|RCPT TO:<b@y.example>|DATA|QUIT"},
		{"one refused", map[string]string{"a@y.example": "550 5.1.1 no such user"}, "", "recipients",
			"EHLO gateway.test|MAIL FROM:<s@x.example>|RCPT TO:<a@y.example>|RCPT TO:<b@y.example>|DATA|QUIT"},
		{"all refused: no DATA", map[string]string{"a@y.example": "550 no", "b@y.example": "450 later"}, "", "recipients",
			"EHLO gateway.test|MAIL FROM:<s@x.example>|RCPT TO:<a@y.example>|RCPT TO:<b@y.example>"},
		{"data refused", nil, "451 4.3.0 try later", "data",
			"EHLO gateway.test|MAIL FROM:<s@x.example>|RCPT TO:<a@y.example>|RCPT TO:<b@y.example>|DATA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSMTPScripted(t, smtpScriptedBasic(nil, tt.rcpt, tt.dataReply))
			s := smtpNewSender(t, srv.config())
			env := Envelope{From: "s@x.example", To: []string{"a@y.example", "b@y.example"}}
			err := s.Send(t.Context(), env, []byte("Subject: y\r\n\r\nhi\r\n"))
			_ = s.Close()
			var re *RecipientError
			var se *SendError
			switch tt.wantOp {
			case "":
				if err != nil {
					t.Fatal(err)
				}
			case "recipients":
				if !errors.As(err, &re) {
					t.Fatalf("err = %v, want a RecipientError", err)
				}
			default:
				if !errors.As(err, &se) || se.Op != tt.wantOp || se.Code != 451 || !IsTemporary(err) {
					t.Fatalf("err = %#v, want a temporary failure at %s", err, tt.wantOp)
				}
			}
			lines, _ := srv.got()
			if got := strings.Join(lines, "|"); got != tt.wantLines {
				t.Errorf("commands:\n got %s\nwant %s", got, tt.wantLines)
			}
		})
	}
}

// TestSendPipelinedRefusals: refusals read from a pipelined envelope are
// reported as before (the step, the code, temporary or not), and a server
// that answers DATA with 354 although it refused every recipient gets an
// empty message ended with "." rather than a session out of step.
func TestSendPipelinedRefusals(t *testing.T) {
	tests := []struct {
		name      string
		mail      string
		rcpt      map[string]string
		dataReply string
		check     func(t *testing.T, err error)
		wantData  int
	}{
		{name: "mail refused", mail: "553 5.7.1 sender refused", rcpt: map[string]string{"a@y.example": "503 5.5.1 no mail", "b@y.example": "503 5.5.1 no mail"},
			dataReply: "503 5.5.1 no valid recipients", check: func(t *testing.T, err error) {
				var se *SendError
				if !errors.As(err, &se) || se.Op != "mail" || se.Code != 553 || IsTemporary(err) {
					t.Errorf("err = %v, want a permanent MAIL refusal", err)
				}
			}},
		{name: "all recipients refused, DATA 354 anyway", rcpt: map[string]string{"a@y.example": "550 no", "b@y.example": "450 4.2.0 later"},
			check: func(t *testing.T, err error) {
				var re *RecipientError
				if !errors.As(err, &re) || len(re.Delivered) != 0 || len(re.Failed) != 2 || strings.Join(re.Retry(), ",") != "b@y.example" {
					t.Errorf("err = %v, want both recipients refused, b to retry", err)
				}
			}, wantData: 1},
		{name: "one recipient refused", rcpt: map[string]string{"b@y.example": "550 5.1.1 unknown"},
			check: func(t *testing.T, err error) {
				var re *RecipientError
				if !errors.As(err, &re) || strings.Join(re.Delivered, ",") != "a@y.example" || len(re.Failed) != 1 || re.Failed[0].Code != 550 || IsTemporary(err) {
					t.Errorf("err = %v, want b refused for good, a delivered", err)
				}
			}, wantData: 1},
		{name: "data refused", dataReply: "554 5.3.4 too big", check: func(t *testing.T, err error) {
			var se *SendError
			if !errors.As(err, &se) || se.Op != "data" || se.Code != 554 || IsTemporary(err) {
				t.Errorf("err = %v, want a permanent DATA refusal", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			basic := smtpScriptedBasic([]string{"PIPELINING"}, tt.rcpt, tt.dataReply)
			srv := newSMTPScripted(t, func(line string, st *smtpScriptedState) []string {
				if strings.HasPrefix(line, "MAIL") {
					st.holdUntil = "DATA"
					if tt.mail != "" {
						return []string{tt.mail}
					}
				}
				return basic(line, st)
			})
			s := smtpNewSender(t, srv.config())
			env := Envelope{From: "s@x.example", To: []string{"a@y.example", "b@y.example"}}
			err := s.Send(t.Context(), env, []byte("Subject: y\r\n\r\nhi\r\n"))
			tt.check(t, err)
			_ = s.Close()
			lines, data := srv.got()
			if len(data) != tt.wantData {
				t.Errorf("%d messages' data reached the server, want %d", len(data), tt.wantData)
			}
			if tt.name == "all recipients refused, DATA 354 anyway" && (len(data) != 1 || data[0] != "") {
				t.Errorf("data = %q, want the empty message that ends the transaction", data)
			}
			if len(lines) < 5 || lines[4] != "DATA" {
				t.Errorf("commands = %q, want the pipelined envelope", lines)
			}
		})
	}
}

// TestSMTPReplyError: replies become go-smtp's error type, with the
// enhanced status code split off as go-smtp's client does.
func TestSMTPReplyError(t *testing.T) {
	tests := []struct {
		in       *textproto.Error
		code     int
		enhanced smtp.EnhancedCode
		msg      string
	}{
		{&textproto.Error{Code: 550, Msg: "5.1.1 no such user"}, 550, smtp.EnhancedCode{5, 1, 1}, "no such user"},
		{&textproto.Error{Code: 451, Msg: "4.3.0 one\n4.3.0 two"}, 451, smtp.EnhancedCode{4, 3, 0}, "one\ntwo"},
		{&textproto.Error{Code: 554, Msg: "no enhanced code"}, 554, smtp.EnhancedCode{}, "no enhanced code"},
		{&textproto.Error{Code: 421, Msg: "closing"}, 421, smtp.EnhancedCode{}, "closing"},
		{&textproto.Error{Code: 550, Msg: "5.x.1 odd"}, 550, smtp.EnhancedCode{}, "5.x.1 odd"},
	}
	for _, tt := range tests {
		var se *smtp.SMTPError
		if !errors.As(smtpReplyError(tt.in), &se) {
			t.Fatalf("%v: not an SMTPError", tt.in)
		}
		if se.Code != tt.code || se.EnhancedCode != tt.enhanced || se.Message != tt.msg {
			t.Errorf("%q: got %d %v %q", tt.in.Msg, se.Code, se.EnhancedCode, se.Message)
		}
	}
	plain := errors.New("network")
	if smtpReplyError(plain) != plain {
		t.Error("a non-reply error was changed")
	}
}

// smtpDotStuffed is the reference: net/textproto's DotWriter, fed p in the
// given pieces, ended with Close.
func smtpDotStuffed(t testing.TB, pieces [][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	w := textproto.NewWriter(bw).DotWriter()
	for _, p := range pieces {
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// smtpOwnDotStuffed is the same through smtpDotWriter (without reading a
// reply).
func smtpOwnDotStuffed(t testing.TB, pieces [][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	d := &smtpDotWriter{w: bw}
	for _, p := range pieces {
		n, err := d.Write(p)
		if err != nil || n != len(p) {
			t.Fatalf("Write = %d, %v; want %d", n, err, len(p))
		}
	}
	d.finish()
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// smtpSplit cuts s at the given offsets (taken modulo its length).
func smtpSplit(s []byte, cuts []byte) [][]byte {
	var out [][]byte
	for _, c := range cuts {
		if len(s) == 0 {
			break
		}
		i := int(c) % (len(s) + 1)
		out = append(out, s[:i])
		s = s[i:]
	}
	return append(out, s)
}

func TestSMTPDotWriterMatchesTextproto(t *testing.T) {
	inputs := []string{
		"", ".", "..", "a", "a\r\n", "a\n", "\n", "\r\n", "\r", "a\r", ".\r\n", ".\r\n.\r\n",
		"Subject: x\r\n\r\n.line\r\n..two\r\nend", "x\r\n.\r\ny\r\n", "bare\nlf\n.dot\n",
		"cr\rinside\r\n", "\r\r\n", ".\n.\n", strings.Repeat("long line ", 1000) + "\r\n.x",
	}
	cuts := [][]byte{nil, {1}, {0, 1, 2}, {3, 1, 1, 1}, {7, 2}}
	for _, in := range inputs {
		for _, c := range cuts {
			pieces := smtpSplit([]byte(in), c)
			want, got := smtpDotStuffed(t, pieces), smtpOwnDotStuffed(t, pieces)
			if !bytes.Equal(got, want) {
				t.Errorf("%q cut %v:\n got %q\nwant %q", in, c, got, want)
			}
		}
	}
}

// FuzzSMTPDotWriter: the line-at-a-time writer produces what net/textproto's
// byte-at-a-time one does, however the message is cut into writes.
func FuzzSMTPDotWriter(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\n.line\r\nbody"), []byte{3, 9})
	f.Add([]byte(".\r\n.\n\r.\r\r\n"), []byte{1, 1, 1, 1})
	f.Add([]byte("\r"), []byte{})
	f.Fuzz(func(t *testing.T, msg, cuts []byte) {
		pieces := smtpSplit(msg, cuts)
		want, got := smtpDotStuffed(t, pieces), smtpOwnDotStuffed(t, pieces)
		if !bytes.Equal(got, want) {
			t.Fatalf("pieces %q:\n got %q\nwant %q", pieces, got, want)
		}
	})
}

// TestStartTLSRefusesInjectedPlaintext: replies the server (or a man in the
// middle) sent in plaintext after "220" to STARTTLS must not be taken as
// replies over TLS; the session is refused before the handshake.
func TestStartTLSRefusesInjectedPlaintext(t *testing.T) {
	basic := smtpScriptedBasic([]string{"STARTTLS", "PIPELINING"}, nil, "")
	srv := newSMTPScripted(t, func(line string, st *smtpScriptedState) []string {
		if line == "STARTTLS" {
			// One write: the injected reply arrives with the 220.
			return []string{"220 2.0.0 ready\r\n250 2.1.0 injected"}
		}
		return basic(line, st)
	})
	cfg := srv.config()
	cfg.TLS = SMTPTLSStartTLS
	s := smtpNewSender(t, cfg)
	err := s.Send(t.Context(), Envelope{From: "s@x.example", To: []string{"a@y.example"}}, []byte("Subject: y\r\n\r\nhi\r\n"))
	var se *SendError
	if !errors.As(err, &se) || se.Op != "starttls" || !strings.Contains(err.Error(), "after its STARTTLS reply") {
		t.Fatalf("err = %v, want the session refused at starttls", err)
	}
}

// TestSendRefusedThenClosed: a server that refuses MAIL or RCPT and then
// hangs up without answering the rest of the pipelined envelope gives the
// refusal, permanent, not a temporary network error (review finding).
func TestSendRefusedThenClosed(t *testing.T) {
	tests := []struct {
		verb, reply string
		ok          func(error) bool
	}{
		{"MAIL", "554 5.7.1 sender address rejected, closing connection", func(err error) bool {
			var se *SendError
			return errors.As(err, &se) && se.Op == "mail" && se.Code == 554 && !IsTemporary(err)
		}},
		{"RCPT", "550 5.7.1 relay access denied", func(err error) bool {
			var re *RecipientError
			return errors.As(err, &re) && len(re.Failed) == 1 && re.Failed[0].Code == 550 && !IsTemporary(err)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.verb, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				r := bufio.NewReader(conn)
				_, _ = conn.Write([]byte("220 x ESMTP\r\n"))
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch {
					case strings.HasPrefix(line, "EHLO"):
						_, _ = conn.Write([]byte("250-x\r\n250 PIPELINING\r\n"))
					case strings.HasPrefix(line, tt.verb):
						_, _ = conn.Write([]byte(tt.reply + "\r\n"))
						return // and hang up
					case strings.HasPrefix(line, "MAIL"):
						_, _ = conn.Write([]byte("250 ok\r\n"))
					}
				}
			}()
			a := ln.Addr().(*net.TCPAddr)
			s := smtpNewSender(t, SMTPConfig{Host: "127.0.0.1", Port: a.Port, TLS: SMTPTLSNone, Timeout: 5 * time.Second, HELO: "gw.test"})
			err = s.Send(t.Context(), Envelope{From: "s@x.example", To: []string{"a@y.example"}}, []byte("Subject: y\r\n\r\nhi\r\n"))
			if !tt.ok(err) {
				t.Fatalf("err = %v (temporary %v); want the permanent refusal %q", err, IsTemporary(err), tt.reply)
			}
		})
	}
}

// TestSenderDoesNotPoolClosedSession: a session whose context ended (and so
// closed its socket) just after its last reply is dropped, not pooled for
// the next message to find dead (review finding).
func TestSenderDoesNotPoolClosedSession(t *testing.T) {
	s := smtpNewSender(t, SMTPConfig{Host: "127.0.0.1", Port: 25, TLS: SMTPTLSNone})
	a, b := net.Pipe()
	defer b.Close()
	s.put(&smtpConn{c: newSMTPClient(a), nc: a, closed: true})
	s.mu.Lock()
	n := len(s.idle)
	s.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d sessions pooled, want the closed one dropped", n)
	}
}

// TestSendChunks: a server that offers CHUNKING and PIPELINING gets the
// envelope and the message as one BDAT LAST chunk in one write (this server
// holds every reply until it has read the chunk: a client waiting between
// commands would hang), the message exactly as composed (no dot-stuffing);
// refusals come out as with DATA, and after one the session is still in
// step for the next message. A message DATA would change (a bare LF) goes
// by DATA.
func TestSendChunks(t *testing.T) {
	exts := []string{"PIPELINING", "CHUNKING", "8BITMIME", "SIZE 1000000"}
	raw := []byte("Subject: x\r\n\r\n.leading dot\r\nbody\r\n")
	tests := []struct {
		name      string
		mail      string
		rcpt      map[string]string
		bdatReply string
		raw       []byte
		check     func(t *testing.T, err error)
		wantLines []string // after EHLO, up to the first message's last command
		wantData  string
		next      bool // the session is kept: a second message goes through on it
	}{
		{name: "accepted", check: func(t *testing.T, err error) {
			if err != nil {
				t.Errorf("err = %v", err)
			}
		}, wantLines: []string{"MAIL FROM:<s@x.example> BODY=8BITMIME SIZE=34", "RCPT TO:<a@y.example>", "RCPT TO:<b@y.example>", "BDAT 34 LAST"},
			wantData: string(raw), next: true},
		{name: "mail refused", mail: "553 5.7.1 sender refused", rcpt: map[string]string{"a@y.example": "503 5.5.1 no mail", "b@y.example": "503 5.5.1 no mail"},
			bdatReply: "503 5.5.1 no valid recipients", check: func(t *testing.T, err error) {
				var se *SendError
				if !errors.As(err, &se) || se.Op != "mail" || se.Code != 553 || IsTemporary(err) {
					t.Errorf("err = %v, want a permanent MAIL refusal", err)
				}
			}, wantData: string(raw)},
		{name: "one recipient refused", rcpt: map[string]string{"b@y.example": "550 5.1.1 unknown"}, check: func(t *testing.T, err error) {
			var re *RecipientError
			if !errors.As(err, &re) || strings.Join(re.Delivered, ",") != "a@y.example" || len(re.Failed) != 1 || re.Failed[0].Code != 550 {
				t.Errorf("err = %v, want b refused for good, a delivered", err)
			}
		}, wantData: string(raw), next: true},
		{name: "all recipients refused", rcpt: map[string]string{"a@y.example": "550 no", "b@y.example": "450 4.2.0 later"},
			bdatReply: "554 5.5.1 no valid recipients", check: func(t *testing.T, err error) {
				var re *RecipientError
				if !errors.As(err, &re) || len(re.Delivered) != 0 || strings.Join(re.Retry(), ",") != "b@y.example" {
					t.Errorf("err = %v, want both refused, b to retry", err)
				}
			}, wantData: string(raw)},
		{name: "chunk refused", bdatReply: "552 5.3.4 too big", check: func(t *testing.T, err error) {
			var se *SendError
			if !errors.As(err, &se) || se.Op != "data" || se.Code != 552 || IsTemporary(err) {
				t.Errorf("err = %v, want a permanent refusal of the message", err)
			}
		}, wantData: string(raw)},
		{name: "bare LF: DATA", raw: []byte("Subject: x\n\n.dot\r\n"), check: func(t *testing.T, err error) {
			if err != nil {
				t.Errorf("err = %v", err)
			}
		}, wantLines: []string{"MAIL FROM:<s@x.example> BODY=8BITMIME SIZE=18", "RCPT TO:<a@y.example>", "RCPT TO:<b@y.example>", "DATA"},
			wantData: "Subject: x\n\n..dot\n", next: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			basic := smtpScriptedBasic(exts, tt.rcpt, tt.bdatReply)
			first := true
			srv := newSMTPScripted(t, func(line string, st *smtpScriptedState) []string {
				switch {
				case strings.HasPrefix(line, "MAIL"):
					st.holdUntil = "BDAT"
					if first && tt.raw != nil {
						st.holdUntil = "DATA"
					}
					if first && tt.mail != "" {
						return []string{tt.mail}
					}
				case !first && strings.HasPrefix(line, "RCPT"):
					return []string{"250 2.1.5 ok"} // the second message
				case !first && strings.HasPrefix(line, "BDAT"):
					return []string{"250 2.0.0 queued"}
				case strings.HasPrefix(line, "BDAT"), line == ".":
					defer func() { first = false }()
				}
				return basic(line, st)
			})
			s := smtpNewSender(t, srv.config())
			msg := raw
			if tt.raw != nil {
				msg = tt.raw
			}
			env := Envelope{From: "s@x.example", To: []string{"a@y.example", "b@y.example"}}
			tt.check(t, s.Send(t.Context(), env, msg))
			wantData := []string{tt.wantData} // the server read past a refused chunk
			if tt.next {
				// The session is in step: the next message goes through on it.
				if err := s.Send(t.Context(), Envelope{From: "s@x.example", To: []string{"c@y.example"}}, raw); err != nil {
					t.Errorf("next message on the same session: %v", err)
				}
				wantData = append(wantData, string(raw))
			}
			_ = s.Close()
			lines, data := srv.got()
			if len(lines) < 1 || lines[0] != "EHLO gateway.test" || slices.Contains(lines[1:], "EHLO gateway.test") || (tt.next && lines[len(lines)-1] != "QUIT") {
				t.Errorf("commands %q: want one session", lines)
			}
			if tt.wantLines != nil && (len(lines) < 1+len(tt.wantLines) || !slices.Equal(lines[1:1+len(tt.wantLines)], tt.wantLines)) {
				t.Errorf("commands:\n got %q\nwant %q", lines, tt.wantLines)
			}
			if !slices.Equal(data, wantData) {
				t.Errorf("data = %q, want %q", data, wantData)
			}
		})
	}
}

// FuzzSMTPChunkable: a message smtpChunkable lets go by BDAT is delivered
// byte for byte as DATA would deliver it (dot-stuffed by textproto's
// writer, then unstuffed as a server does).
func FuzzSMTPChunkable(f *testing.F) {
	for _, s := range []string{"a\r\n", "a\r\r\nb\r\n", "a\nb\r\n", ".x\r\n..y\r\n", "a\rb\r\n", "\r\n", "a", "a\r\n\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if !smtpChunkable(msg) {
			return
		}
		var b bytes.Buffer
		w := textproto.NewWriter(bufio.NewWriter(&b)).DotWriter()
		_, _ = w.Write(msg)
		_ = w.Close()
		delivered, err := io.ReadAll(textproto.NewReader(bufio.NewReader(&b)).DotReader())
		if err != nil {
			t.Fatal(err)
		}
		// textproto's DotReader turns CRLF into LF: compare in that form.
		if want := bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")); !bytes.Equal(delivered, want) {
			t.Fatalf("DATA delivers %q, BDAT %q", delivered, msg)
		}
	})
}

// TestSendChunkNoDelayedACKStall: a server like Postfix, with Nagle's
// algorithm on, that sends the replies to MAIL and RCPT before it reads a
// BDAT chunk and the reply to BDAT after it. Unless the client acknowledges
// the first replies at once (smtpQuickAck), the last one waits for its
// delayed ACK: 40 ms or more per message. Of 30 messages on one session,
// fewer than a third may take 35 ms (with the stall, all but the first
// few do: the kernel starts a connection with quick ACKs).
func TestSendChunkNoDelayedACKStall(t *testing.T) {
	if !smtpQuickAckWorks {
		t.Skip("no TCP_QUICKACK here: messages go by DATA")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.(*net.TCPConn).SetNoDelay(false) // Nagle on, as Postfix's smtpd
		r := bufio.NewReader(conn)
		w := bufio.NewWriter(conn)
		reply := func(s string) { w.WriteString(s + "\r\n") }
		reply("220 nagle ESMTP")
		w.Flush()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch f := strings.Fields(line); {
			case strings.HasPrefix(line, "EHLO"):
				reply("250-nagle\r\n250-PIPELINING\r\n250 CHUNKING")
			case strings.HasPrefix(line, "MAIL"), strings.HasPrefix(line, "RCPT"):
				reply("250 2.1.0 ok")
			case len(f) == 3 && f[0] == "BDAT":
				w.Flush() // the replies so far, before the chunk
				n, _ := strconv.Atoi(f[1])
				if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
					return
				}
				reply("250 2.0.0 queued")
			case strings.HasPrefix(line, "QUIT"):
				reply("221 bye")
				w.Flush()
				return
			default:
				reply("502 5.5.2 unknown")
			}
			if r.Buffered() == 0 {
				w.Flush()
			}
		}
	}()
	a := ln.Addr().(*net.TCPAddr)
	s := smtpNewSender(t, SMTPConfig{Host: "127.0.0.1", Port: a.Port, TLS: SMTPTLSNone, Timeout: 5 * time.Second, HELO: "gateway.test"})
	defer s.Close()
	raw := []byte("Subject: x\r\n\r\n" + strings.Repeat("body line\r\n", 1000))
	env := Envelope{From: "s@x.example", To: []string{"a@y.example"}}
	slow := 0
	for range 30 {
		start := time.Now()
		if err := s.Send(t.Context(), env, raw); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) >= 35*time.Millisecond {
			slow++
		}
	}
	if slow >= 10 {
		t.Errorf("%d of 30 messages took 35 ms or more: the reply to BDAT waited for a delayed ACK", slow)
	}
}
