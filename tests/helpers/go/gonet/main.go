// gonet: a plain net-package client and server, for the supervisor's tests
// of Go programs (built static with CGO_ENABLED=0, and dynamic with cgo).
//
//	gonet serve ADDR          TCP echo server; prints "listening ADDR", then
//	                          "accepted local=L remote=R" for each connection
//	gonet dial HOST:PORT MSG  prints "local=L remote=R", sends MSG and a
//	                          newline, prints the echoed line
//	gonet lookup NAME         Go resolver: sorted addresses, one a line, or
//	                          "error: ..." (exit 1)
//	gonet http URL            GET: prints the status line, then the body
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gonet serve ADDR | dial HOST:PORT MSG | lookup NAME | http URL")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gonet:", err)
	os.Exit(1)
}

func serve(addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fail(err)
	}
	fmt.Println("listening", l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			fail(err)
		}
		fmt.Printf("accepted local=%v remote=%v\n", c.LocalAddr(), c.RemoteAddr())
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}

func dial(addr, msg string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fail(err)
	}
	defer c.Close()
	fmt.Printf("local=%v remote=%v\n", c.LocalAddr(), c.RemoteAddr())
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		fail(err)
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fail(err)
	}
	fmt.Print(reply)
}

func lookup(name string) {
	net.DefaultResolver.PreferGo = true
	addrs, err := net.DefaultResolver.LookupHost(context.Background(), name)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		fmt.Println(a)
	}
}

func get(url string) {
	resp, err := http.Get(url)
	if err != nil {
		fail(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		fail(err)
	}
}

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	switch cmd, args := os.Args[1], os.Args[2:]; {
	case cmd == "serve" && len(args) == 1:
		serve(args[0])
	case cmd == "dial" && len(args) == 2:
		dial(args[0], args[1])
	case cmd == "lookup" && len(args) == 1:
		lookup(args[0])
	case cmd == "http" && len(args) == 1:
		get(args[0])
	default:
		usage()
	}
}
