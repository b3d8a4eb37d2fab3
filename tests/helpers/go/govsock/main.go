// govsock: a native AF_VSOCK program (github.com/mdlayher/vsock), to show
// that vsockify leaves programs that use vsock themselves untouched.
//
//	govsock listen PORT        echo server on vsock PORT; prints nothing
//	govsock dial CID PORT MSG  sends MSG and a newline, prints the echoed line
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/mdlayher/vsock"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: govsock listen PORT | govsock dial CID PORT MSG")
	os.Exit(2)
}

func number(s string) uint32 {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		fmt.Fprintf(os.Stderr, "govsock: %q is not a 32-bit number\n", s)
		os.Exit(2)
	}
	return uint32(n)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "govsock:", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch {
	case os.Args[1] == "listen" && len(os.Args) == 3:
		l, err := vsock.Listen(number(os.Args[2]), nil)
		if err != nil {
			fail(err)
		}
		for {
			c, err := l.Accept()
			if err != nil {
				fail(err)
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	case os.Args[1] == "dial" && len(os.Args) == 5:
		c, err := vsock.Dial(number(os.Args[2]), number(os.Args[3]), nil)
		if err != nil {
			fail(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, os.Args[4]+"\n"); err != nil {
			fail(err)
		}
		reply, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			fail(err)
		}
		fmt.Print(reply)
	default:
		usage()
	}
}
