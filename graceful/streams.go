package graceful

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Long-lived responses and connections (server-sent events, streaming responses, WebSockets) outlast
// any shutdown delay: http.Server.Shutdown waits for a streaming handler until the drain timeout cuts
// it, does not wait for a hijacked connection at all, and neither tells the client. A handler that
// registers its stream with Stream learns when to end it: once the shutdown delay is over, when every
// proxy has stopped sending new connections here, so that the client's reconnect lands on another pod.
// It then tells its client (EndEventStream for server-sent events, CloseWebSocket for a WebSocket),
// returns, and calls done. Serve waits for every registered stream within the drain timeout.

// Stream registers a long-lived response or connection with the shutdown. Its context ends when the
// shutdown delay is over (the moment the server stops listening) or when parent ends (the request's
// context, for a response; a hijacked connection's own). Call done when the stream has ended; Serve
// waits for it, at most until the drain timeout, after which it reports the streams still open
// (*DrainError).
func (s *Server) Stream(parent context.Context) (ctx context.Context, done func()) {
	ctx, cancel := context.WithCancel(parent)
	s.streamsMu.Lock()
	s.streams++
	s.streamsMu.Unlock()
	go func() {
		select {
		case <-s.streamsEnd:
			cancel()
		case <-ctx.Done():
		}
	}()
	var once bool
	return ctx, func() {
		s.streamsMu.Lock()
		defer s.streamsMu.Unlock()
		if once {
			return
		}
		once = true
		cancel()
		s.streams--
		s.streamsCond.Broadcast()
	}
}

// OpenStreams counts the registered streams not yet done.
func (s *Server) OpenStreams() int {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	return s.streams
}

// endStreams ends every stream's context: the shutdown delay is over.
func (s *Server) endStreams() {
	s.endStreamsOnce.Do(func() { close(s.streamsEnd) })
}

// waitStreams waits until every registered stream is done, or ctx ends; it returns how many are still
// open.
func (s *Server) waitStreams(ctx context.Context) int {
	stop := context.AfterFunc(ctx, func() {
		s.streamsMu.Lock()
		defer s.streamsMu.Unlock()
		s.streamsCond.Broadcast()
	})
	defer stop()
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	for s.streams > 0 && ctx.Err() == nil {
		s.streamsCond.Wait()
	}
	return s.streams
}

// DrainError is a shutdown that did not finish within the drain timeout: requests still being served,
// or streams registered with Stream still open.
type DrainError struct {
	Timeout     time.Duration
	OpenStreams int   // streams registered with Stream and not done
	Err         error // http.Server.Shutdown's error, if it timed out
}

func (e *DrainError) Error() string {
	switch {
	case e.Err != nil && e.OpenStreams > 0:
		return fmt.Sprintf("drain not finished within %s: %v; %d stream(s) still open", e.Timeout, e.Err, e.OpenStreams)
	case e.Err != nil:
		return fmt.Sprintf("drain not finished within %s: %v", e.Timeout, e.Err)
	}
	return fmt.Sprintf("drain not finished within %s: %d stream(s) still open", e.Timeout, e.OpenStreams)
}

func (e *DrainError) Unwrap() error { return e.Err }

// EndEventStream ends a server-sent event stream so that its client reconnects elsewhere at once: it
// sets the client's reconnection time to retry (the "retry" field) and flushes; the handler then
// returns, and the client's EventSource reconnects after retry, through the Service, to a pod that is
// not leaving, sending the last event ID it saw (Last-Event-ID) so the stream resumes where it stopped.
func EndEventStream(w http.ResponseWriter, retry time.Duration) error {
	if _, err := io.WriteString(w, "retry: "+strconv.FormatInt(retry.Milliseconds(), 10)+"\n\n"); err != nil {
		return err
	}
	return http.NewResponseController(w).Flush()
}

// GoingAway is the WebSocket close code of a server that is going down (RFC 6455, 7.4.1).
const GoingAway = 1001

// CloseWebSocket writes a WebSocket close frame with the code GoingAway and reason to a hijacked
// connection (a server's frames are not masked), so that the client reconnects instead of seeing the
// connection drop. The reason is at most 123 bytes (a control frame's payload is at most 125).
func CloseWebSocket(w io.Writer, reason string) error {
	if len(reason) > 123 {
		return errors.New("graceful: a WebSocket close reason is at most 123 bytes")
	}
	frame := append([]byte{0x88, byte(2 + len(reason)), GoingAway >> 8, GoingAway & 0xff}, reason...)
	_, err := w.Write(frame)
	return err
}
