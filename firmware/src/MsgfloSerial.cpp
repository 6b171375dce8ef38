// The serial link transport; see MsgfloSerial.h and docs/serial-link.md.

#include "MsgfloSerial.h"

namespace msgflo {

using link::DeviceErrorCode;
using link::FrameType;
using link::LinkDecoder;
using link::LinkError;

namespace {
// type, seq, offset, total and the CRC around each description slice
const size_t kDescriptionOverhead = 8;

const char* flashChars(FlashText text) {
  return reinterpret_cast<const char*>(text);
}
}  // namespace

bool SerialLinkTransport::write(bool built) {
  if (built) link::writeFrame(stream_, frame_);
  return built;
}

void SerialLinkTransport::begin(Participant& participant) {
  participant_ = &participant;
  sendHello();
}

void SerialLinkTransport::sendHello() {
  if (!participant_) return;
  const uint8_t maxFrame = static_cast<uint8_t>(decoder_.capacity());
  write(link::buildHello(frame_, seq_++, flashChars(participant_->component()),
                         flashChars(participant_->version()), maxFrame, true));
}

bool SerialLinkTransport::sendError(uint8_t code, FlashText text) {
  return write(link::buildError(frame_, seq_++, code, flashChars(text), true));
}

bool SerialLinkTransport::send(uint8_t outport, const link::ByteSource& payload) {
  return write(link::buildMessage(frame_, seq_++, outport, payload));
}

void SerialLinkTransport::loop() {
  while (participant_ && stream_.available() > 0) {
    const int byte = stream_.read();
    if (byte < 0) return;
    const LinkDecoder::Event event = decoder_.push(static_cast<uint8_t>(byte));
    if (event == LinkDecoder::Event::Frame) {
      handleFrame(decoder_.frame());
    } else if (event == LinkDecoder::Event::Error) {
      handleError();
    }
  }
}

void SerialLinkTransport::handleFrame(const link::Frame& frame) {
  switch (frame.type) {
    case FrameType::Ping: {
      write(link::buildPong(frame_, frame.seq, decoder_.counters()));
      return;
    }
    case FrameType::Describe:
      if (frame.isRequest) {
        reply(frame.seq, frame.offset);
        return;
      }
      break;
    case FrameType::Message:
      if (!participant_->deliver(frame.port, frame.data, frame.dataLength)) {
        replyError(frame.seq, DeviceErrorCode::NoSuchPort);
      }
      return;
    default:
      break;
  }
  // Hello, pong, error and description frames only ever go from a device to a host.
  replyError(frame.seq, DeviceErrorCode::UnknownType);
}

void SerialLinkTransport::handleError() {
  switch (decoder_.error()) {
    case LinkError::UnknownType:
      replyError(decoder_.frame().seq, DeviceErrorCode::UnknownType);
      break;
    case LinkError::BadBody:
      replyError(decoder_.frame().seq, DeviceErrorCode::BadBody);
      break;
    case LinkError::TooLong:  // its seq has not been read: the device's own counter
      replyError(seq_++, DeviceErrorCode::TooLong);
      break;
    default:  // bad COBS, bad CRC, too short: counted by the decoder, reported in pongs
      break;
  }
}

// One slice of the description, rendered afresh into the decoder's buffer (free between
// frames): the whole JSON is generated, only the window [offset, offset + room) is kept.
void SerialLinkTransport::reply(uint8_t seq, uint16_t offset) {
  const size_t capacity = decoder_.capacity();
  const size_t room = capacity > kDescriptionOverhead ? capacity - kDescriptionOverhead : 0;
  JsonWindow window(offset, decoder_.scratch(), room);
  JsonWriter json(window);
  participant_->describe(json);
  if (offset > window.total() || window.total() > 0xFFFF) {
    replyError(seq, DeviceErrorCode::BadBody);
    return;
  }
  const link::RamBytes slice(decoder_.scratch(), window.kept());
  write(link::buildDescription(frame_, seq, offset, static_cast<uint16_t>(window.total()), slice));
}

void SerialLinkTransport::replyError(uint8_t seq, DeviceErrorCode code) {
  write(link::buildError(frame_, seq, static_cast<uint8_t>(code), 0));
}

}  // namespace msgflo
