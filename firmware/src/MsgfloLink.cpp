// The serial link codec; see MsgfloLink.h and docs/serial-link.md.

#include "MsgfloLink.h"

namespace msgflo {
namespace link {

const char* linkErrorName(LinkError error) {
  switch (error) {
    case LinkError::None:
      return "none";
    case LinkError::BadCobs:
      return "bad_cobs";
    case LinkError::BadCrc:
      return "bad_crc";
    case LinkError::TooShort:
      return "too_short";
    case LinkError::TooLong:
      return "too_long";
    case LinkError::UnknownType:
      return "unknown_type";
    case LinkError::BadBody:
      return "bad_body";
  }
  return "?";
}

// CRC-16/CCITT-FALSE bit by bit: poly 0x1021, init 0xFFFF, no reflection, xorout 0. No table:
// 512 bytes of it would not fit an Uno's RAM budget, and a byte costs ~8 shifts.
uint16_t crc16Update(uint16_t crc, uint8_t byte) {
  crc = static_cast<uint16_t>(crc ^ (static_cast<uint16_t>(byte) << 8));
  for (uint8_t bit = 0; bit < 8; ++bit) {
    crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                         : static_cast<uint16_t>(crc << 1);
  }
  return crc;
}

uint16_t crc16(const uint8_t* data, size_t length, uint16_t crc) {
  for (size_t i = 0; i < length; ++i) {
    crc = crc16Update(crc, data[i]);
  }
  return crc;
}

int cobsDecode(const uint8_t* in, size_t length, uint8_t* out, size_t capacity) {
  size_t written = 0;
  size_t pos = 0;
  while (pos < length) {
    const uint8_t code = in[pos];
    const size_t end = pos + code;
    if (code == 0 || end > length || written + code > capacity + 1) {
      return -1;
    }
    for (size_t i = pos + 1; i < end; ++i) {
      if (in[i] == 0) {
        return -1;
      }
      out[written++] = in[i];
    }
    if (code != 0xFF && end < length) {
      if (written == capacity) {
        return -1;
      }
      out[written++] = 0;
    }
    pos = end;
  }
  return static_cast<int>(written);
}

// -- FrameBytes --------------------------------------------------------------------------------

void FrameBytes::begin(FrameType type, uint8_t seq) {
  head_[0] = static_cast<uint8_t>(type);
  head_[1] = seq;
  inlineUsed_ = 0;
  partCount_ = 0;
  length_ = 2;
  ok_ = true;
  closed_ = false;
}

bool FrameBytes::addPart(Where where, const uint8_t* data, const ByteSource* source,
                         size_t length) {
  if (closed_ || partCount_ == kMaxParts) {
    ok_ = false;
    return false;
  }
  Part& part = parts_[partCount_++];
  part.where = where;
  part.data = data;
  part.source = source;
  part.length = length;
  length_ += length;
  return true;
}

bool FrameBytes::addByte(uint8_t byte) {
  if (closed_ || inlineUsed_ == kMaxInline) {
    ok_ = false;
    return false;
  }
  inline_[inlineUsed_] = byte;
  Part* last = partCount_ ? &parts_[partCount_ - 1] : 0;
  if (last && last->where == Where::Ram && last->data + last->length == &inline_[inlineUsed_]) {
    ++last->length;  // extends the inline run just before it
    ++length_;
    ++inlineUsed_;
    return true;
  }
  return addPart(Where::Ram, &inline_[inlineUsed_++], 0, 1);
}

bool FrameBytes::addU16(uint16_t value) {
  return addByte(static_cast<uint8_t>(value >> 8)) && addByte(static_cast<uint8_t>(value));
}

bool FrameBytes::addBytes(const uint8_t* data, size_t length) {
  return length == 0 || addPart(Where::Ram, data, 0, length);
}

bool FrameBytes::addProgmem(const uint8_t* data, size_t length) {
  return length == 0 || addPart(Where::Progmem, data, 0, length);
}

bool FrameBytes::add(const ByteSource& source) {
  return source.size() == 0 || addPart(Where::Source, 0, &source, source.size());
}

bool FrameBytes::close() {
  if (closed_) {
    return false;
  }
  uint16_t crc = 0xFFFF;
  for (size_t i = 0; i < length_; ++i) {
    crc = crc16Update(crc, at(i));
  }
  crc_[0] = static_cast<uint8_t>(crc >> 8);
  crc_[1] = static_cast<uint8_t>(crc);
  closed_ = true;
  if (length_ + 2 > kMaxFrame) {
    ok_ = false;
  }
  return ok_;
}

uint8_t FrameBytes::at(size_t index) const {
  if (index < 2) {
    return head_[index];
  }
  index -= 2;
  for (uint8_t n = 0; n < partCount_; ++n) {
    const Part& part = parts_[n];
    if (index < part.length) {
      switch (part.where) {
        case Where::Ram:
          return part.data[index];
        case Where::Progmem:
          return MSGFLO_PGM_BYTE(part.data + index);
        case Where::Source:
          return part.source->at(index);
      }
    }
    index -= part.length;
  }
  return index < 2 ? crc_[index] : 0;
}

// -- builders ----------------------------------------------------------------------------------

namespace {

size_t textLength(const char* text, bool progmem) {
  if (!text) {
    return 0;
  }
  if (!progmem) {
    return strlen(text);
  }
  size_t length = 0;
  while (MSGFLO_PGM_BYTE(text + length) != 0) {
    ++length;
  }
  return length;
}

bool addText(FrameBytes& frame, const char* text, size_t length, bool progmem) {
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(text);
  return progmem ? frame.addProgmem(bytes, length) : frame.addBytes(bytes, length);
}

bool addShortText(FrameBytes& frame, const char* text, bool progmem) {
  const size_t length = textLength(text, progmem);
  if (length > 0xFF) {
    return false;
  }
  return frame.addByte(static_cast<uint8_t>(length)) && addText(frame, text, length, progmem);
}

bool finish(FrameBytes& frame, bool ok) {
  if (!ok) {
    frame.close();
    return false;
  }
  return frame.close();
}

}  // namespace

bool buildHello(FrameBytes& frame, uint8_t seq, const char* name, const char* version,
                uint8_t maxFrame, bool progmem) {
  frame.begin(FrameType::Hello, seq);
  const bool ok = frame.addByte(kProtocolVersion) && frame.addByte(maxFrame) &&
                  addShortText(frame, name, progmem) && addShortText(frame, version, progmem);
  return finish(frame, ok);
}

bool buildDescribeRequest(FrameBytes& frame, uint8_t seq, uint16_t offset) {
  frame.begin(FrameType::Describe, seq);
  return finish(frame, offset == 0 || frame.addU16(offset));
}

bool buildDescription(FrameBytes& frame, uint8_t seq, uint16_t offset, uint16_t total,
                      const ByteSource& data) {
  frame.begin(FrameType::Describe, seq);
  const bool fits = static_cast<size_t>(offset) + data.size() <= total;
  return finish(frame, fits && frame.addU16(offset) && frame.addU16(total) && frame.add(data));
}

bool buildMessage(FrameBytes& frame, uint8_t seq, uint8_t port, const uint8_t* payload,
                  size_t length) {
  frame.begin(FrameType::Message, seq);
  return finish(frame, frame.addByte(port) && frame.addBytes(payload, length));
}

bool buildMessage(FrameBytes& frame, uint8_t seq, uint8_t port, const ByteSource& payload) {
  frame.begin(FrameType::Message, seq);
  return finish(frame, frame.addByte(port) && frame.add(payload));
}

bool buildPing(FrameBytes& frame, uint8_t seq) {
  frame.begin(FrameType::Ping, seq);
  return finish(frame, true);
}

bool buildPong(FrameBytes& frame, uint8_t seq, const ErrorCounters& counters) {
  frame.begin(FrameType::Pong, seq);
  return finish(frame, frame.addU16(counters.cobs) && frame.addU16(counters.crc) &&
                           frame.addU16(counters.overflow) && frame.addU16(counters.rejected));
}

bool buildError(FrameBytes& frame, uint8_t seq, uint8_t code, const char* text, bool progmem) {
  frame.begin(FrameType::Error, seq);
  const size_t length = textLength(text, progmem);
  return finish(frame, frame.addByte(code) && addText(frame, text, length, progmem));
}

// -- parsing -----------------------------------------------------------------------------------

namespace {

uint16_t readU16(const uint8_t* data) {
  return static_cast<uint16_t>((static_cast<uint16_t>(data[0]) << 8) | data[1]);
}

// A length-prefixed string at body[pos]; advances pos. False if it runs past the body.
bool takeText(const uint8_t* body, size_t length, size_t& pos, const uint8_t*& text,
              uint8_t& textLength) {
  if (pos >= length || pos + 1 + body[pos] > length) {
    return false;
  }
  textLength = body[pos];
  text = body + pos + 1;
  pos += 1 + textLength;
  return true;
}

LinkError parseHello(const uint8_t* body, size_t length, Frame& frame) {
  if (length < 2) {
    return LinkError::BadBody;
  }
  frame.protocol = body[0];
  frame.maxFrame = body[1];
  size_t pos = 2;
  // Bytes after the version belong to later protocol minor additions: ignored.
  const bool ok = takeText(body, length, pos, frame.name, frame.nameLength) &&
                  takeText(body, length, pos, frame.version, frame.versionLength);
  return ok ? LinkError::None : LinkError::BadBody;
}

LinkError parseDescribe(const uint8_t* body, size_t length, Frame& frame) {
  frame.isRequest = length == 0 || length == 2;
  if (frame.isRequest) {
    frame.offset = length == 2 ? readU16(body) : 0;
    return LinkError::None;
  }
  if (length < 4) {
    return LinkError::BadBody;
  }
  frame.offset = readU16(body);
  frame.total = readU16(body + 2);
  frame.data = body + 4;
  frame.dataLength = length - 4;
  const bool fits = static_cast<size_t>(frame.offset) + frame.dataLength <= frame.total;
  return fits ? LinkError::None : LinkError::BadBody;
}

LinkError parseMessage(const uint8_t* body, size_t length, Frame& frame) {
  if (length < 1) {
    return LinkError::BadBody;
  }
  frame.port = frame.code = body[0];
  frame.data = body + 1;
  frame.dataLength = length - 1;
  return LinkError::None;
}

bool knownType(uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::Hello:
    case FrameType::Describe:
    case FrameType::Message:
    case FrameType::Ping:
    case FrameType::Pong:
    case FrameType::Error:
      return true;
  }
  return false;
}

}  // namespace

LinkError parseAnyBody(Frame& frame) {
  const uint8_t* body = frame.body;
  const size_t length = frame.bodyLength;
  switch (frame.type) {
    case FrameType::Hello:
      return parseHello(body, length, frame);
    case FrameType::Describe:
      return parseDescribe(body, length, frame);
    case FrameType::Message:
    case FrameType::Error:
      return parseMessage(body, length, frame);
    case FrameType::Ping:
      return length == 0 ? LinkError::None : LinkError::BadBody;
    case FrameType::Pong:
      if (length < 8) {  // more counters: later minor versions
        return LinkError::BadBody;
      }
      frame.counters.cobs = readU16(body);
      frame.counters.crc = readU16(body + 2);
      frame.counters.overflow = readU16(body + 4);
      frame.counters.rejected = readU16(body + 6);
      return LinkError::None;
  }
  return LinkError::UnknownType;
}

LinkError parseDeviceBody(Frame& frame) {
  const size_t length = frame.bodyLength;
  switch (frame.type) {
    case FrameType::Describe:
      if (length == 1 || length == 3) {
        return LinkError::BadBody;
      }
      if (length > 3) {
        return LinkError::UnknownType;
      }
      frame.isRequest = true;
      frame.offset = length == 2 ? readU16(frame.body) : 0;
      return LinkError::None;
    case FrameType::Message:
      return parseMessage(frame.body, length, frame);
    case FrameType::Ping:
      return length == 0 ? LinkError::None : LinkError::BadBody;
    default:  // hello, pong, error, description: they only go to a host
      return LinkError::UnknownType;
  }
}

LinkError parseFrame(const uint8_t* raw, size_t length, Frame& frame, BodyParser parser) {
  memset(&frame, 0, sizeof frame);
  if (length < kMinFrame) {
    return LinkError::TooShort;
  }
  if (crc16(raw, length) != 0) {  // CRC over data + big-endian CRC is zero when intact
    return LinkError::BadCrc;
  }
  frame.seq = raw[1];
  if (!knownType(raw[0])) {
    return LinkError::UnknownType;
  }
  frame.type = static_cast<FrameType>(raw[0]);
  frame.body = raw + 2;
  frame.bodyLength = length - kMinFrame;
  return parser(frame);
}

// -- LinkDecoder -------------------------------------------------------------------------------

LinkDecoder::LinkDecoder(uint8_t* buffer, size_t capacity, BodyParser parser)
    : buffer_(buffer),
      capacity_(capacity > kMaxFrame ? kMaxFrame : capacity),
      error_(LinkError::None),
      frames_(0),
      parser_(parser) {
  memset(&counters_, 0, sizeof counters_);
  memset(&frame_, 0, sizeof frame_);
  reset();
}

void LinkDecoder::reset() {
  encoded_ = 0;
  length_ = 0;
  blockLeft_ = 0;
  blockCode_ = 0;
  overflow_ = false;
}

namespace {
void saturatingIncrement(uint16_t& counter) {
  if (counter != 0xFFFF) {
    ++counter;
  }
}
}  // namespace

LinkDecoder::Event LinkDecoder::fail(LinkError error) {
  error_ = error;
  switch (error) {
    case LinkError::BadCobs:
      saturatingIncrement(counters_.cobs);
      break;
    case LinkError::BadCrc:
      saturatingIncrement(counters_.crc);
      break;
    case LinkError::TooLong:
      saturatingIncrement(counters_.overflow);
      break;
    default:
      saturatingIncrement(counters_.rejected);
      break;
  }
  return Event::Error;
}

void LinkDecoder::append(uint8_t byte) {
  if (length_ < capacity_) {  // always true: a decoded frame is shorter than its encoding
    buffer_[length_++] = byte;
  }
}

LinkDecoder::Event LinkDecoder::finish() {
  if (blockLeft_ != 0) {
    return fail(LinkError::BadCobs);
  }
  const LinkError error = parseFrame(buffer_, length_, frame_, parser_);
  if (error != LinkError::None) {
    return fail(error);
  }
  if (frames_ != 0xFFFF) {
    ++frames_;
  }
  return Event::Frame;
}

LinkDecoder::Event LinkDecoder::push(uint8_t byte) {
  if (byte == 0) {  // every 0x00 ends a frame
    const bool empty = encoded_ == 0;
    const bool discarded = overflow_;
    Event event = empty || discarded ? Event::None : finish();
    reset();
    return event;
  }
  if (overflow_) {
    return Event::None;
  }
  if (++encoded_ > capacity_ + 1) {  // one COBS code byte more than the largest frame
    overflow_ = true;
    return fail(LinkError::TooLong);
  }
  if (blockLeft_ == 0) {  // a code byte: the previous block, unless full, implied a zero
    if (encoded_ > 1 && blockCode_ != 0xFF) {
      append(0);
    }
    blockCode_ = byte;
    blockLeft_ = static_cast<uint8_t>(byte - 1);
  } else {
    append(byte);
    --blockLeft_;
  }
  return Event::None;
}

}  // namespace link
}  // namespace msgflo
