//! `futures_sink::Sink` for [`WithContext`] (feature `futures-sink`).

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_sink::Sink;

use super::WithContext;

/// Every call enters the context, as a poll of the future does.
///
/// # Examples
///
/// ```
/// use contextvars::{Context, ContextVar, WithContext};
/// use futures::SinkExt;
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// # futures::executor::block_on(async {
/// let (tx, mut rx) = futures::channel::mpsc::unbounded::<&str>();
/// // a sink that reads the context whenever an item goes in
/// let sink = tx.with(|line: &str| async move {
///     Ok::<_, futures::channel::mpsc::SendError>(if USER.get() == Some("alice") { line } else { "?" })
/// });
/// let mut sink = Box::pin(WithContext::new(sink, Context::new().with_value(&USER, "alice")));
/// sink.send("hello").await.unwrap();
/// drop(sink);
/// assert_eq!(futures::StreamExt::next(&mut rx).await, Some("hello"));
/// # });
/// ```
impl<Item, S: Sink<Item>> Sink<Item> for WithContext<S> {
    type Error = S::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.enter(|sink| sink.poll_ready(cx))
    }

    fn start_send(self: Pin<&mut Self>, item: Item) -> Result<(), S::Error> {
        self.enter(|sink| sink.start_send(item))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.enter(|sink| sink.poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.enter(|sink| sink.poll_close(cx))
    }
}
