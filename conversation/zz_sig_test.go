package conversation
import ("os";"os/signal";"syscall";"runtime/pprof";"fmt")
func init() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1)
	go func() { for range c { f, _ := os.Create(fmt.Sprintf("/tmp/stack.%d.txt", os.Getpid())); pprof.Lookup("goroutine").WriteTo(f, 2); f.Close() } }()
}
