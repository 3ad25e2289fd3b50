import NIOCore

/// A message published on a channel this subscription listens to (`PUBLISH channel payload`).
public struct RedisPubSubMessage: Sendable, Equatable {
    /// The channel the message was published on.
    public var channel: String
    /// The message as published, binary-safe.
    public var payload: ByteBuffer

    /// Creates a message.
    public init(channel: String, payload: ByteBuffer) {
        self.channel = channel
        self.payload = payload
    }

    /// The payload as UTF-8 text.
    public var text: String { String(buffer: self.payload) }
}
