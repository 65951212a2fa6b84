//! `WithContext` as a `Sink` (feature `futures-sink`) and as `AsyncRead`, `AsyncWrite` and
//! `AsyncBufRead` (feature `futures-io`): every call enters the context, and a panic in one
//! restores the caller's.
#![cfg(any(feature = "futures-sink", feature = "futures-io"))]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use contextvars::{Context, ContextVar, WithContext};

mod support;
use support::isolated;

static V: ContextVar<u32> = ContextVar::new("v");

/// Records the value of `V` seen by each call, by name; panics on a call named in `panic_on`.
#[derive(Default)]
struct Recorder {
    seen: Vec<(&'static str, Option<u32>)>,
    panic_on: Option<&'static str>,
    buffer: Vec<u8>,
}

impl Recorder {
    fn record(&mut self, call: &'static str) {
        self.seen.push((call, V.get()));
        V.set(V.get().unwrap_or(0) + 1); // stays in the wrapper's context
        assert!(self.panic_on != Some(call), "{call} fails");
    }
}

fn wrapped(recorder: Recorder) -> WithContext<Recorder> {
    WithContext::new(recorder, Context::new().with_value(&V, 100))
}

/// Checks that the calls saw the wrapper's context, in order, each one the previous one's set.
fn assert_entered(recorder: &WithContext<Recorder>, calls: &[&str]) {
    let seen = &recorder.get_ref().unwrap().seen;
    let expected: Vec<_> = calls.iter().zip(100..).map(|(call, v)| (*call, Some(v))).collect();
    let seen: Vec<_> = seen.iter().map(|(call, v)| (*call, *v)).collect();
    assert_eq!(seen, expected);
    assert_eq!(V.get(), Some(1), "nothing leaked into the caller");
}

#[cfg(feature = "futures-sink")]
mod sink {
    use futures::Sink;

    use super::*;

    impl Sink<u8> for Recorder {
        type Error = std::convert::Infallible;
        fn poll_ready(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
            self.get_mut().record("poll_ready");
            Poll::Ready(Ok(()))
        }
        fn start_send(self: Pin<&mut Self>, item: u8) -> Result<(), Self::Error> {
            let this = self.get_mut();
            this.record("start_send");
            this.buffer.push(item);
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
            self.get_mut().record("poll_flush");
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
            self.get_mut().record("poll_close");
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn every_sink_call_enters_the_context() {
        isolated(|| {
            V.set(1);
            let mut sink = wrapped(Recorder::default());
            futures::executor::block_on(async {
                use futures::SinkExt;
                sink.feed(7).await.unwrap();
                sink.flush().await.unwrap();
                sink.close().await.unwrap();
            });
            assert_entered(&sink, &["poll_ready", "start_send", "poll_flush", "poll_close"]);
            assert_eq!(sink.get_ref().unwrap().buffer, [7]);
        });
    }

    #[test]
    fn a_panicking_sink_call_restores_the_callers_context() {
        isolated(|| {
            V.set(1);
            let mut sink = wrapped(Recorder { panic_on: Some("start_send"), ..Recorder::default() });
            let outcome = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut sink).start_send(1)));
            assert!(outcome.is_err());
            assert_eq!(V.get(), Some(1));
            assert_eq!(sink.into_parts().1.get(&V), Some(&101), "the set before the panic stayed inside");
        });
    }
}

#[cfg(feature = "futures-io")]
mod io {
    use std::io::{IoSlice, IoSliceMut, Result};

    use futures::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    use super::*;

    impl AsyncRead for Recorder {
        fn poll_read(self: Pin<&mut Self>, _: &mut TaskContext<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
            self.get_mut().record("poll_read");
            buf[0] = b'r';
            Poll::Ready(Ok(1))
        }
        fn poll_read_vectored(
            self: Pin<&mut Self>,
            _: &mut TaskContext<'_>,
            bufs: &mut [IoSliceMut<'_>],
        ) -> Poll<Result<usize>> {
            self.get_mut().record("poll_read_vectored");
            bufs[0][0] = b'v';
            Poll::Ready(Ok(1))
        }
    }

    impl AsyncWrite for Recorder {
        fn poll_write(self: Pin<&mut Self>, _: &mut TaskContext<'_>, buf: &[u8]) -> Poll<Result<usize>> {
            let this = self.get_mut();
            this.record("poll_write");
            this.buffer.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_write_vectored(
            self: Pin<&mut Self>,
            _: &mut TaskContext<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<Result<usize>> {
            let this = self.get_mut();
            this.record("poll_write_vectored");
            this.buffer.extend_from_slice(&bufs[0]);
            Poll::Ready(Ok(bufs[0].len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Result<()>> {
            self.get_mut().record("poll_flush");
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Result<()>> {
            self.get_mut().record("poll_close");
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncBufRead for Recorder {
        fn poll_fill_buf(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Result<&[u8]>> {
            let this = self.get_mut();
            this.record("poll_fill_buf");
            Poll::Ready(Ok(b"line\n"))
        }
        fn consume(self: Pin<&mut Self>, _: usize) {
            self.get_mut().record("consume");
        }
    }

    #[test]
    fn every_io_call_enters_the_context() {
        isolated(|| {
            V.set(1);
            let mut io = wrapped(Recorder::default());
            futures::executor::block_on(async {
                let mut one = [0u8; 1];
                io.read_exact(&mut one).await.unwrap();
                assert_eq!(&one, b"r");
                let mut two = [0u8; 1];
                let read = io.read_vectored(&mut [IoSliceMut::new(&mut two)]).await.unwrap();
                assert_eq!((read, &two), (1, b"v"));
                io.write_all(b"ab").await.unwrap();
                let written = io.write_vectored(&[IoSlice::new(b"c")]).await.unwrap();
                assert_eq!(written, 1);
                io.flush().await.unwrap();
                let mut line = String::new();
                io.read_line(&mut line).await.unwrap();
                assert_eq!(line, "line\n");
                io.close().await.unwrap();
            });
            let calls = [
                "poll_read",
                "poll_read_vectored",
                "poll_write",
                "poll_write_vectored",
                "poll_flush",
                "poll_fill_buf",
                "consume",
                "poll_close",
            ];
            assert_entered(&io, &calls);
            assert_eq!(io.get_ref().unwrap().buffer, b"abc");
        });
    }

    #[test]
    fn a_panicking_io_call_restores_the_callers_context() {
        isolated(|| {
            V.set(1);
            let mut io = wrapped(Recorder { panic_on: Some("poll_write"), ..Recorder::default() });
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                futures::executor::block_on(io.write_all(b"x")).unwrap();
            }));
            assert!(outcome.is_err());
            assert_eq!(V.get(), Some(1));
            assert_eq!(io.into_parts().1.get(&V), Some(&101));
        });
    }

    /// Real I/O through the wrapper: a TCP echo over smol's sockets (which implement the
    /// `futures-io` traits), each side wrapped in its own context.
    #[test]
    fn a_tcp_round_trip_through_wrapped_sockets() {
        smol::block_on(async {
            let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let server = smol::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                let mut stream = WithContext::new(stream, Context::new().with_value(&V, 2));
                let mut buf = [0u8; 5];
                stream.read_exact(&mut buf).await.unwrap();
                stream.write_all(&buf).await.unwrap();
            });
            let stream = smol::net::TcpStream::connect(address).await.unwrap();
            let mut stream = WithContext::new(stream, Context::new().with_value(&V, 1));
            stream.write_all(b"hello").await.unwrap();
            let mut echo = Vec::new();
            server.await;
            stream.read_to_end(&mut echo).await.unwrap();
            assert_eq!(echo, b"hello");
        });
    }
}
