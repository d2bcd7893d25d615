package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Timeouts of the HTTP server and its handlers.
const (
	handlerTimeout  = 15 * time.Second // a whole request, scrape included
	shutdownTimeout = 5 * time.Second  // graceful stop: requests in flight finish
	maxBodyLine     = 300              // a failure's text in the /readyz body is cut here
)

// Handler serves
//
//	/metrics  the registry in the Prometheus text (or OpenMetrics) format
//	/healthz  200 "ok" while the process serves requests
//	/readyz   200 "ready" when every check of ready passes, else 503 with
//	          one line per failed check ("smtp: dial tcp ...: connection refused")
//
// ready may be nil (then /readyz answers like /healthz). Every request is
// bounded by a timeout.
func (m *Metrics) Handler(ready *Readiness, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             handlerTimeout - time.Second,
		EnableOpenMetrics:   true,
	})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if ready == nil {
			writeText(w, http.StatusOK, "ready\n")
			return
		}
		if err := ready.Check(r.Context()); err != nil {
			writeText(w, http.StatusServiceUnavailable, "not ready\n"+readyBody(err))
			return
		}
		writeText(w, http.StatusOK, "ready\n")
	})
	return http.TimeoutHandler(mux, handlerTimeout, "timeout\n")
}

// readyBody is one line per failure, each cut to maxBodyLine bytes.
func readyBody(err error) string {
	var b strings.Builder
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if len(line) > maxBodyLine {
			line = line[:maxBodyLine] + "..."
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// Serve serves h on ln until ctx ends, then shuts down gracefully (requests
// in flight get a few seconds to finish) and closes ln. It returns nil after
// a shutdown caused by ctx, else the error that stopped the server.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      handlerTimeout + 5*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shut down http server on %s: %w", ln.Addr(), err)
	}
	return nil
}
