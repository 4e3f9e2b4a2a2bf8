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

// Lines as trace_pipe printed them on a 2-node run (kernel 6.18): a SYN dropped by a TIME_WAIT for
// PAWS, the client's reset of the TIME_WAIT's ACK, and the client's SYN sent again.
const (
	pawsLine  = `       live.test-24914   [001] .Ns1. 65108.338055: kfree_skb: skbaddr=00000000a371c298 rx_sk=000000006e55752e protocol=2048 location=tcp_v4_rcv+0x99/0x1400 reason: TCP_RFC7323_TW_PAWS`
	resetLine = `       live.test-24914   [001] .N... 65108.338070: tcp_send_reset: skbaddr=00000000d8dd6cac skaddr=000000006ca8f4dc src=192.0.2.2:57786 dest=10.96.219.43:80 state=TCP_SYN_SENT reason=TCP_INVALID_ACK_SEQUENCE`
	synLine   = `          <idle>-0       [001] .Ns2. 65108.352208: tcp_retransmit_skb: skbaddr=00000000085aed56 skaddr=000000006ca8f4dc family=AF_INET sport=57786 dport=80 saddr=192.0.2.2 daddr=10.96.219.43 saddrv6=::ffff:192.0.2.2 daddrv6=::ffff:10.96.219.43 state=TCP_SYN_SENT err=0`
)

func TestParse(t *testing.T) {
	const local, remote = "192.0.2.2:57786", "10.96.219.43:80"
	for _, c := range []struct {
		line   string
		offset time.Duration
		want   Event
	}{
		{synLine, 0, Event{At: time.Unix(65108, 352208000), Kind: Retransmit, Local: local, Remote: remote}},
		{resetLine, time.Second, Event{At: time.Unix(65109, 338070000), Kind: Reset, Local: local, Remote: remote}},
		{pawsLine, 0, Event{At: time.Unix(65108, 338055000), Kind: PAWS}},
	} {
		e, ok := parse(c.line, c.offset)
		require.True(t, ok, c.line)
		assert.Equal(t, c.want, e)
	}
	for _, s := range []string{
		"# tracer: nop",
		strings.Replace(synLine, "err=0", "err=-105", 1),                                         // a retransmission that was not sent
		strings.Replace(synLine, "state=TCP_SYN_SENT", "state=TCP_ESTABLISHED", 1),               // not a SYN
		strings.Replace(resetLine, "state=TCP_SYN_SENT", "state=TCP_ESTABLISHED", 1),             // not a connection's opening
		strings.Replace(resetLine, "reason=TCP_INVALID_ACK_SEQUENCE", "reason=NOT_SPECIFIED", 1), // another reset
		strings.Replace(pawsLine, "TCP_RFC7323_TW_PAWS", "TCP_OLD_SEQUENCE", 1),                  // another drop
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

func TestReasonIn(t *testing.T) {
	format := []byte(`print fmt: "...", __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 38, "TCP_RFC7323_TW_PAWS" }, { 44, "TCP_INVALID_ACK_SEQUENCE" })`)
	n, err := reasonIn(format, "skb/kfree_skb", TimeWaitPAWS)
	require.NoError(t, err)
	assert.Equal(t, 38, n)
	_, err = reasonIn([]byte(`{ 2, "NOT_SPECIFIED" }`), "skb/kfree_skb", TimeWaitPAWS)
	assert.ErrorContains(t, err, "skb/kfree_skb has no reason TCP_RFC7323_TW_PAWS")
}

func TestExplain(t *testing.T) {
	const local, remote = "192.0.2.2:4000", "10.96.0.20:80"
	at := func(ms int) time.Time { return time.Unix(100, 0).Add(time.Duration(ms) * time.Millisecond) }
	paws := func(ms int) Event { return Event{At: at(ms), Kind: PAWS} }
	rst := func(ms int, l string) Event { return Event{At: at(ms), Kind: Reset, Local: l, Remote: remote} }
	syn := func(ms int, l string) Event { return Event{At: at(ms), Kind: Retransmit, Local: l, Remote: remote} }
	cases := []struct {
		name     string
		events   []Event
		want     Handshake
		collided bool
		says     string
	}{
		{"answered by a TIME_WAIT twice, then through (the 1.04 s CI case)",
			[]Event{paws(1), rst(2, local), syn(12, local), paws(13), rst(14, local), syn(1012, local)},
			Handshake{Retransmits: 2, OldAnswers: 2, PAWS: 2}, true, "each after a TIME_WAIT of an older connection"},
		{"answered once, then the retransmission lost",
			[]Event{paws(1), rst(2, local), syn(12, local), syn(1012, local)},
			Handshake{Retransmits: 2, OldAnswers: 1, PAWS: 1}, false, "1 after an older connection's answer"},
		{"answered, but no PAWS drop right before: not a TIME_WAIT's answer",
			[]Event{paws(1), rst(20, local), syn(30, local)},
			Handshake{Retransmits: 1, OldAnswers: 1}, false, "0 of those right after a TIME_WAIT's PAWS drop"},
		{"a PAWS drop before the SYN before does not vouch for the next answer",
			[]Event{paws(10), rst(11, local), syn(12, local), rst(14, local), syn(1012, local)},
			Handshake{Retransmits: 2, OldAnswers: 2, PAWS: 1}, false, "2 after an older connection's answer (TCP_INVALID_ACK_SEQUENCE), 1 of those"},
		{"lost with no answer", []Event{syn(1000, local)}, Handshake{Retransmits: 1}, false, "the rest were lost with no answer"},
		{"another connection's answer does not count",
			[]Event{paws(1), rst(2, "192.0.2.2:4001"), syn(12, local)},
			Handshake{Retransmits: 1}, false, "0 after an older connection's answer"},
		{"the same local port to another Service does not count",
			[]Event{paws(1), {At: at(2), Kind: Reset, Local: local, Remote: "10.96.0.21:80"}, syn(12, local)},
			Handshake{Retransmits: 1}, false, "0 after"},
		{"two answers before the first retransmission, none before the second",
			[]Event{paws(1), rst(2, local), paws(2), rst(3, local), syn(12, local), syn(1012, local)},
			Handshake{Retransmits: 2, OldAnswers: 1, PAWS: 1}, false, "1 after"},
		{"events out of order are put in order",
			[]Event{syn(1012, local), rst(14, local), syn(12, local), paws(13), rst(2, local), paws(1)},
			Handshake{Retransmits: 2, OldAnswers: 2, PAWS: 2}, true, "each after a TIME_WAIT"},
		{"before the connection began: not its own",
			[]Event{paws(-5), rst(-4, local), syn(12, local)},
			Handshake{Retransmits: 1}, false, "0 after"},
		{"nothing recorded for the connection", []Event{paws(1), rst(2, "192.0.2.2:5000"), syn(12, "192.0.2.2:5000")}, Handshake{}, false, "recorded no retransmission"},
	}
	assert.Equal(t, 1012*time.Millisecond, Explain(cases[0].events, local, remote, at(0), at(1100)).Waited, "the CI case's last SYN went 1.012 s after the start")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := Explain(c.events, local, remote, at(0), at(1100))
			var last time.Duration // the last retransmission's time after the start
			for _, e := range c.events {
				if e.Kind == Retransmit && e.Local == local && e.At.Sub(at(0)) > last {
					last = e.At.Sub(at(0))
				}
			}
			assert.Equal(t, last, h.Waited, "Waited: the last SYN's time")
			h.Waited = 0
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
			if e.Kind == Retransmit && e.Remote == net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) {
				seen = e
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond, "a SYN to a full accept queue (port %d) was retransmitted, and the watcher saw it", port)
	assert.Equal(t, 1, Explain(w.Events(start, time.Now()), seen.Local, seen.Remote, seen.At, seen.At).Retransmits)
	assert.WithinDuration(t, time.Now(), seen.At, 5*time.Second, "the event's time is wall time")
	require.NoError(t, w.Err())
}
