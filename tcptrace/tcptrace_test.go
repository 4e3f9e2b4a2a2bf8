package tcptrace

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Lines as trace_pipe printed them on a 2-node run (kernel 6.18), a SYN rejected by a TIME_WAIT.
const (
	pawsLine = `       live.test-24914   [001] .Ns1. 65108.338055: kfree_skb: skbaddr=00000000a371c298 rx_sk=000000006e55752e protocol=2048 location=tcp_v4_rcv+0x99/0x1400 reason: TCP_RFC7323_TW_PAWS`
	ackLine  = `       live.test-24914   [001] .N... 65108.338073: kfree_skb: skbaddr=00000000d8dd6cac rx_sk=000000006ca8f4dc protocol=2048 location=tcp_v4_do_rcv+0x7c/0x2d0 reason: TCP_INVALID_ACK_SEQUENCE`
	synLine  = `          <idle>-0       [001] .Ns2. 65108.352208: tcp_retransmit_skb: skbaddr=00000000085aed56 skaddr=000000006ca8f4dc family=AF_INET sport=57786 dport=80 saddr=192.0.2.2 daddr=10.96.219.43 saddrv6=::ffff:192.0.2.2 daddrv6=::ffff:10.96.219.43 state=TCP_SYN_SENT err=0`
)

func TestParse(t *testing.T) {
	e, ok := parse(synLine, 0)
	require.True(t, ok)
	assert.Equal(t, Event{At: time.Unix(65108, 352208000), Kind: Retransmit, Sock: "000000006ca8f4dc", Saddr: "192.0.2.2", Daddr: "10.96.219.43", Sport: 57786, Dport: 80}, e)
	e, ok = parse(ackLine, time.Second)
	require.True(t, ok)
	assert.Equal(t, Event{At: time.Unix(65109, 338073000), Kind: InvalidACK, Sock: "000000006ca8f4dc"}, e)
	e, ok = parse(`  x-1 [000] ..s2. 1.5: kfree_skb: skbaddr=0000000000000001 rx_sk=0000000000000000 protocol=2048 location=tcp_v4_rcv+0x99/0x1400 reason: TCP_RFC7323_TW_PAWS`, 0)
	require.True(t, ok)
	assert.Equal(t, Event{At: time.Unix(1, 500000000), Kind: TimeWaitPAWS}, e, "no receiving socket: Sock stays empty")
	for _, s := range []string{
		"# tracer: nop",
		strings.Replace(synLine, "err=0", "err=-105", 1), // a retransmission that was not sent
		`  x-1 [000] ..s2. 1.5: tcp_retransmit_skb: skaddr=01 sport=1 state=TCP_ESTABLISHED`,
		`  x-1 [000] ..s2. 1.5: kfree_skb: skbaddr=01 rx_sk=00`,
	} {
		_, ok := parse(s, 0)
		assert.False(t, ok, s)
	}
}

// A line saying the kernel's buffer overflowed makes the record incomplete: Err says so.
func TestLostEventsAreAnError(t *testing.T) {
	w := &Watcher{}
	w.line(synLine, 0)
	require.NoError(t, w.Err())
	assert.Len(t, w.Events(time.Unix(0, 0), time.Unix(1<<40, 0)), 1)
	w.line("CPU:1 [LOST 12 EVENTS]", 0)
	assert.ErrorContains(t, w.Err(), "events were lost: CPU:1 [LOST 12 EVENTS]")
}

func TestReasonNumbers(t *testing.T) {
	format := []byte(`print fmt: "...", __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 38, "TCP_RFC7323_TW_PAWS" }, { 44, "TCP_INVALID_ACK_SEQUENCE" })`)
	n, err := reasonNumbers(format, TimeWaitPAWS, InvalidACK)
	require.NoError(t, err)
	assert.Equal(t, []int{38, 44}, n)
	_, err = reasonNumbers([]byte(`{ 2, "NOT_SPECIFIED" }`), TimeWaitPAWS)
	assert.ErrorContains(t, err, "no drop reason TCP_RFC7323_TW_PAWS")
}

func TestExplain(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(100, 0).Add(time.Duration(ms) * time.Millisecond) }
	paws := Event{Kind: TimeWaitPAWS}
	ack := func(ms int, sock string) Event { return Event{At: at(ms), Kind: InvalidACK, Sock: sock} }
	syn := func(ms, port int, sock string) Event {
		return Event{At: at(ms), Kind: Retransmit, Sock: sock, Sport: port}
	}
	withAt := func(e Event, ms int) Event { e.At = at(ms); return e }
	cases := []struct {
		name     string
		events   []Event
		want     Handshake
		collided bool
		says     string
	}{
		{"answered by a TIME_WAIT twice, then through (the 1.04 s CI case)",
			[]Event{withAt(paws, 1), ack(2, "s1"), syn(12, 4000, "s1"), withAt(paws, 13), ack(14, "s1"), syn(1012, 4000, "s1")},
			Handshake{Retransmits: 2, OldAnswers: 2, PAWS: 2}, true, "each after its socket dropped an ACK of an older connection"},
		{"answered once, then the retransmission lost",
			[]Event{withAt(paws, 1), ack(2, "s1"), syn(12, 4000, "s1"), syn(1012, 4000, "s1")},
			Handshake{Retransmits: 2, OldAnswers: 1, PAWS: 1}, false, "2 time(s), 1 of them after an answer"},
		{"lost with no answer", []Event{syn(1000, 4000, "s1")}, Handshake{Retransmits: 1}, false, "the rest were lost with no answer"},
		{"another socket's answer does not count",
			[]Event{ack(2, "s2"), syn(12, 4000, "s1"), syn(20, 5000, "s2")},
			Handshake{Retransmits: 1}, false, "0 of them after an answer"},
		{"two answers before the first retransmission, none before the second",
			[]Event{ack(2, "s1"), ack(3, "s1"), syn(12, 4000, "s1"), syn(1012, 4000, "s1")},
			Handshake{Retransmits: 2, OldAnswers: 1}, false, "1 of them after an answer"},
		{"events out of order are put in order",
			[]Event{syn(1012, 4000, "s1"), ack(14, "s1"), syn(12, 4000, "s1"), ack(2, "s1")},
			Handshake{Retransmits: 2, OldAnswers: 2}, true, "each after its socket dropped"},
		{"the same socket address reused by a later connection, outside the window",
			[]Event{syn(12, 4000, "s1"), ack(3000, "s1")},
			Handshake{Retransmits: 1}, false, "0 of them after an answer"},
		{"nothing recorded for the port", []Event{ack(2, "s1"), syn(12, 5000, "s1")}, Handshake{OldAnswers: 0}, false, "recorded no retransmission"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := Explain(c.events, 4000, at(0), at(1100))
			assert.Equal(t, c.want, h)
			assert.Equal(t, c.collided, h.Collided())
			assert.Contains(t, h.String(), c.says)
		})
	}
}

// TestWatcherSeesALostSYN makes the kernel retransmit a SYN on loopback (a listener whose accept queue
// is full drops it) and requires the watcher to report it with its port, then to leave no instance.
func TestWatcherSeesALostSYN(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("tracefs needs root; the live suite runs as root")
	}
	w, err := Start()
	require.NoError(t, err)
	dir := w.dir
	defer func() {
		require.NoError(t, w.Close())
		assert.NoError(t, w.Close(), "a second Close is harmless")
		_, err := os.Stat(dir)
		assert.True(t, os.IsNotExist(err), "the tracefs instance %s is removed", dir)
	}()

	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	require.NoError(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, unix.Listen(fd, 0)) // never accepted: the queue fills at once
	sa, err := unix.Getsockname(fd)
	require.NoError(t, err)
	port := sa.(*unix.SockaddrInet4).Port
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for range 4 { // the first connections fill the queue; the SYNs of the others are dropped and sent again
		go func() {
			if c, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
				<-ctx.Done()
				c.Close()
			}
		}()
	}
	var seen Event
	require.Eventually(t, func() bool {
		w.Flush()
		for _, e := range w.Events(start, time.Now()) {
			if e.Kind == Retransmit && e.Dport == port && e.Daddr == "127.0.0.1" {
				seen = e
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond, "a SYN to a full accept queue (port %d) was retransmitted, and the watcher saw it", port)
	assert.Equal(t, 1, Explain(w.Events(start, time.Now()), seen.Sport, seen.At, seen.At).Retransmits)
	assert.WithinDuration(t, time.Now(), seen.At, 5*time.Second, "the event's time is wall time")
	require.NoError(t, w.Err())
}
