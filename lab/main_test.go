package lab

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wirelab/wirelab/chat"
)

// fakeChildEnv makes the test binary a server process of the kind the child tests need (the
// lab starts it as Options.ServerCommand): the value is one of the modes in fakeChild.
const fakeChildEnv = "WIRELAB_TEST_FAKE_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeChildEnv); mode != "" {
		os.Exit(fakeChild(mode))
	}
	goleak.VerifyTestMain(m)
}

// fakeReady is a ready line with a certificate hash of the right length.
var fakeReady = `{"ready":true,"cert_hash":"` + strings.Repeat("ab", 32) + `"}`

// fakeChild plays a server process that misbehaves in one way, and returns its exit status.
func fakeChild(mode string) int {
	in := bufio.NewScanner(os.Stdin)
	switch mode {
	case "well": // answers every request, quits when told
		fmt.Println(fakeReady)
		for in.Scan() {
			switch in.Text() {
			case "mark":
				fmt.Println(`{"ok":true}`)
			case "stats":
				fmt.Println(`{"requests":7,"goroutines_peak":3,"rss_peak_bytes":1000}`)
			case "quit":
				return 0
			}
		}
		return 0
	case "exit-after-ready":
		fmt.Println(fakeReady)
		fmt.Fprintln(os.Stderr, "fake crash: the server fell over")
		return 3
	case "crash-at-mark": // a long stack on stderr, as a panic with many goroutines writes
		fmt.Println(fakeReady)
		for in.Scan() {
			if in.Text() == "mark" {
				fmt.Fprintln(os.Stderr, "panic: fake crash at mark")
				for i := range 2000 {
					fmt.Fprintf(os.Stderr, "goroutine %d [running]:\n\tsomewhere.go:%d\n", i, i)
				}
				fmt.Fprintln(os.Stderr, "the last line")
				return 2
			}
		}
		return 0
	case "hang": // reads the requests, answers none
		fmt.Println(fakeReady)
		for in.Scan() {
		}
		time.Sleep(time.Hour) // and does not quit either: the lab must kill it
	case "no-ready":
		fmt.Fprintln(os.Stderr, "cannot listen: fake reason")
		return 1
	case "silent": // never ready
		time.Sleep(time.Hour)
		return 1
	case "real-crash-at-mark": // the real server on the bridge, until mark
		pr, pw := io.Pipe()
		go func() {
			for in.Scan() {
				if in.Text() == "mark" {
					fmt.Fprintln(os.Stderr, "fake crash at mark")
					os.Exit(3)
				}
				fmt.Fprintln(pw, in.Text())
			}
			pw.Close()
		}()
		if err := ServeChild(os.NewFile(3, "netem-bridge"), chat.Config{}, pr, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "%s=%q: unknown mode\n", fakeChildEnv, mode)
	return 1
}
