//! The protobuf codec of every generated service and client: prost's, except that a
//! message that does not decode is INVALID_ARGUMENT (the sender's mistake) with a fixed
//! message, not INTERNAL carrying the decoder's internal text.

use std::marker::PhantomData;

use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstEncoder};

/// The status of a message that does not decode.
pub(crate) fn undecodable() -> Status {
    Status::invalid_argument("the message is not a valid protobuf encoding of its type")
}

/// prost encoding and decoding; see the module comment.
pub struct ProtoCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for ProtoCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for ProtoCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProtoDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProtoDecoder(PhantomData)
    }
}

/// Decodes `U` with prost; a decoding failure is `undecodable()`.
pub struct ProtoDecoder<U>(PhantomData<U>);

impl<U: prost::Message + Default> Decoder for ProtoDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(src).map(Some).map_err(|_| undecodable())
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}
