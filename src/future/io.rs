//! `futures_io::{AsyncRead, AsyncWrite, AsyncBufRead}` for [`WithContext`] (feature
//! `futures-io`).

use std::io::{IoSlice, IoSliceMut, Result};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_io::{AsyncBufRead, AsyncRead, AsyncWrite};

use super::WithContext;

/// Every call enters the context, as a poll of the future does.
///
/// # Examples
///
/// ```
/// use contextvars::{Context, ContextVar, WithContext};
/// use futures::io::{AsyncReadExt, Cursor};
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// # futures::executor::block_on(async {
/// let mut reader = WithContext::new(Cursor::new(b"hello"), Context::new().with_value(&USER, "alice"));
/// let mut text = String::new();
/// reader.read_to_string(&mut text).await.unwrap();
/// assert_eq!(text, "hello");
/// # });
/// ```
impl<R: AsyncRead> AsyncRead for WithContext<R> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
        self.enter(|reader| reader.poll_read(cx, buf))
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<Result<usize>> {
        self.enter(|reader| reader.poll_read_vectored(cx, bufs))
    }
}

/// Every call enters the context, as a poll of the future does.
///
/// # Examples
///
/// ```
/// use contextvars::{Context, WithContext};
/// use futures::io::{AsyncWriteExt, Cursor};
///
/// # futures::executor::block_on(async {
/// let mut writer = WithContext::new(Cursor::new(Vec::new()), Context::new());
/// writer.write_all(b"hello").await.unwrap();
/// writer.close().await.unwrap();
/// assert_eq!(writer.get_ref().unwrap().get_ref(), b"hello");
/// # });
/// ```
impl<W: AsyncWrite> AsyncWrite for WithContext<W> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        self.enter(|writer| writer.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<Result<usize>> {
        self.enter(|writer| writer.poll_write_vectored(cx, bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        self.enter(|writer| writer.poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        self.enter(|writer| writer.poll_close(cx))
    }
}

/// Every call enters the context, as a poll of the future does.
///
/// # Examples
///
/// ```
/// use contextvars::{Context, WithContext};
/// use futures::io::{AsyncBufReadExt, Cursor};
///
/// # futures::executor::block_on(async {
/// let mut reader = WithContext::new(Cursor::new(b"one\ntwo\n"), Context::new());
/// let mut line = String::new();
/// reader.read_line(&mut line).await.unwrap();
/// assert_eq!(line, "one\n");
/// # });
/// ```
impl<R: AsyncBufRead> AsyncBufRead for WithContext<R> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<&[u8]>> {
        self.enter(|reader| reader.poll_fill_buf(cx))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.enter(|reader| reader.consume(amt));
    }
}
