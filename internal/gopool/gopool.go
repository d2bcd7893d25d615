// Package gopool runs short tasks on reused goroutines.
//
// A goroutine started per message grows its stack, copying it each time,
// to the depth that parsing, rendering and composing a message need; in a
// backlog drain that growth showed as ~3 % of the gateway's CPU. A Pool's
// goroutines keep their stacks between tasks. A task never waits for a free
// goroutine: when none is idle, a new one starts, so tasks that wait on
// each other cannot deadlock for want of goroutines. Goroutines idle for
// IdleTimeout end.
package gopool

import (
	"sync"
	"time"
)

// IdleTimeout is how long a goroutine waits for its next task before it
// ends.
const IdleTimeout = 30 * time.Second

// Pool runs tasks. The zero value is ready to use; it needs no closing
// (idle goroutines end by themselves).
type Pool struct {
	once  sync.Once
	tasks chan func()
}

// Go runs f on an idle goroutine of the pool, or on a new one.
func (p *Pool) Go(f func()) {
	p.once.Do(func() { p.tasks = make(chan func()) })
	select {
	case p.tasks <- f: // an idle goroutine took it
	default:
		go p.work(f)
	}
}

func (p *Pool) work(f func()) {
	idle := time.NewTimer(IdleTimeout)
	defer idle.Stop()
	for {
		f()
		f = nil
		idle.Reset(IdleTimeout)
		select {
		case f = <-p.tasks:
		case <-idle.C:
			return
		}
	}
}
