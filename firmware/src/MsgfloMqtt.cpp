// The MQTT transport; see MsgfloMqtt.h.

#include "MsgfloMqtt.h"

namespace msgflo {

using mqtt::DecodeError;
using mqtt::Decoder;
using mqtt::Packet;
using mqtt::PacketType;
using mqtt::TopicBytes;

namespace {
const char kDiscoveryTopic[] = "fbp";
const char kProtocolKey[] PROGMEM = "protocol";
const char kDiscovery[] PROGMEM = "discovery";
const char kCommandKey[] PROGMEM = "command";
const char kParticipant[] PROGMEM = "participant";
const char kPayloadKey[] PROGMEM = "payload";
const char kIdKey[] PROGMEM = "id";
const char kRoleKey[] PROGMEM = "role";
const char kQueueKey[] PROGMEM = "queue";
const char kPeriodKey[] PROGMEM = "discoveryPeriod";
const char kOptionsKey[] PROGMEM = "options";
const char kPersistentKey[] PROGMEM = "persistent";

const unsigned long kConnackTimeout = 10000;  // ms from CONNECT sent to CONNACK
const unsigned long kStableTime = 10000;      // ms up after which a loss retries at once
const size_t kMaxReadPerLoop = 512;           // bytes handled per loop(): it returns soon
const size_t kReadChunk = 32;

// An id of the participant kept in RAM, cut (never overflowing) at its capacity.
class IdSink : public JsonSink {
 public:
  IdSink(char* out, size_t capacity) : out_(out), capacity_(capacity), length_(0), cut_(false) {
    out_[0] = 0;
  }
  void put(char c) override {
    if (length_ + 1 >= capacity_) {
      cut_ = true;
      return;
    }
    out_[length_++] = c;
    out_[length_] = 0;
  }
  bool cut() const { return cut_; }

 private:
  char* out_;
  size_t capacity_;
  size_t length_;
  bool cut_;
};

}  // namespace

// -- Output -----------------------------------------------------------------------------------

void MqttTransportBase::Output::put(uint8_t byte) {
  data_[length_++] = byte;
  if (length_ == sizeof data_) flush();
}

bool MqttTransportBase::Output::flush() {
  if (length_ > 0) {
    if (client_.write(data_, length_) != length_) failed_ = true;
    length_ = 0;
  }
  const bool ok = !failed_;
  failed_ = false;
  return ok;
}

// -- MqttTransportBase ------------------------------------------------------------------------

const uint8_t MqttTransportBase::kMaxBarrierRounds;

MqttTransportBase::MqttTransportBase(Client& client, const MqttConfig& config, Decoder& decoder,
                                     Slot* slots, uint8_t* data, uint8_t slotCount, size_t slotSize)
    : client_(client),
      config_(config),
      decoder_(decoder),
      slots_(slots),
      data_(data),
      slotCount_(slotCount),
      slotSize_(slotSize),
      head_(0),
      count_(0),
      participant_(0),
      out_(client),
      counters_(),
      role_(""),
      roleLength_(0),
      state_(MqttState::Idle),
      configured_(false),
      announced_(false),
      pingOutstanding_(false),
      barrier_(Barrier::Clear),
      barrierRounds_(0),
      pingsUnanswered_(0),
      barrierPings_(0),
      subscriptionsUnacked_(0),
      arrivedSinceBarrier_(0),
      lastError_(DecodeError::None),
      packetId_(0),
      retryDelay_(0),
      rng_(0),
      retryAt_(0),
      since_(0),
      lastSent_(0),
      lastArrival_(0),
      lastAnnounce_(0),
      pingSent_(0) {
  id_[0] = 0;
  for (uint8_t i = 0; i < slotCount_; ++i) slots_[i].state = Pending::Free;
}

void MqttTransportBase::begin(Participant& participant) {
  participant_ = &participant;
  IdSink id(id_, sizeof id_);
  participant.writeId(id, config_.role);
  // The role: the configured one, or the component, which the id starts with (in RAM: flash
  // is not readable byte by byte through a plain pointer on every board).
  if (config_.role && *config_.role) {
    role_ = config_.role;
    roleLength_ = strlen(config_.role);
  } else {
    role_ = id_;
    const size_t length = flashLength(participant.component());
    roleLength_ = length < strlen(id_) ? length : strlen(id_);
  }
  // Every topic must fit kMaxTopic: the discovery writes each queue from a stack copy.
  bool fits = !id.cut() && config_.host != 0;
  for (uint8_t i = 0; i < participant.inportCount(); ++i) {
    fits = fits && TopicBytes(config_.prefix, role_, roleLength_, participant.inportId(i)).size() <
                       kMaxTopic;
  }
  for (uint8_t i = 0; i < participant.outportCount(); ++i) {
    fits = fits && TopicBytes(config_.prefix, role_, roleLength_, participant.outportId(i)).size() <
                       kMaxTopic;
  }
  configured_ = fits;
  // Seeded from the id (boards differ) and the time (a board's restarts differ).
  uint32_t seed = 2166136261UL ^ static_cast<uint32_t>(millis());
  for (const char* c = id_; *c; ++c) seed = (seed ^ static_cast<uint8_t>(*c)) * 16777619UL;
  rng_ = seed ? seed : 1;
  resume();
}

void MqttTransportBase::resume() {
  if (!configured_ || state_ != MqttState::Idle) return;
  state_ = MqttState::Waiting;
  retryDelay_ = config_.retryMin;  // the first attempt at once, a retry after retryMin
  retryAt_ = millis();
}

uint32_t MqttTransportBase::jitter() {  // xorshift32: jitter needs no quality
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 17;
  rng_ ^= rng_ << 5;
  return rng_;
}

uint16_t MqttTransportBase::nextPacketId() {
  // Never one a queued message still waits with: at most slotCount_ + 1 tries.
  for (;;) {
    if (++packetId_ == 0) packetId_ = 1;
    bool used = false;
    for (uint8_t i = 0; i < count_ && !used; ++i) {
      const Slot& slot = slotAt(i);
      used = slot.state == Pending::Sent && slot.packetId == packetId_;
    }
    if (!used) return packetId_;
  }
}

void MqttTransportBase::loop() {
  const unsigned long now = millis();
  switch (state_) {
    case MqttState::Idle:
      return;
    case MqttState::Waiting:
      if (static_cast<long>(now - retryAt_) >= 0) attempt(now);
      return;
    case MqttState::Connecting:
      receive(now);
      if (state_ == MqttState::Connecting && now - since_ >= kConnackTimeout) drop(now);
      return;
    case MqttState::Connected:
      receive(now);
      if (state_ != MqttState::Connected) return;
      keepalive(now);
      if (state_ != MqttState::Connected) return;
      if (now - lastAnnounce_ >=
          static_cast<unsigned long>(config_.discoveryPeriod) * 1000UL * 10 / 22) {
        announce();
        sent(now);
      }
      return;
  }
}

void MqttTransportBase::attempt(unsigned long now) {
  ++counters_.attempts;
  if (client_.connect(config_.host, config_.port) <= 0) {
    scheduleRetry(now);
    return;
  }
  decoder_.reset();
  out_.reset();
  announced_ = false;
  pingOutstanding_ = false;
  pingsUnanswered_ = 0;
  barrierPings_ = 0;
  subscriptionsUnacked_ = 0;
  mqtt::ConnectOptions options;
  options.clientId = config_.clientId ? config_.clientId : id_;
  options.user = config_.user;
  options.password = config_.password;
  options.keepalive = config_.keepalive;
  options.cleanSession = config_.cleanSession;
  state_ = MqttState::Connecting;
  since_ = now;
  if (!mqtt::writeConnect(out_, options)) {
    drop(now);
    return;
  }
  sent(now);
}

void MqttTransportBase::scheduleRetry(unsigned long now) {
  state_ = MqttState::Waiting;
  const uint32_t delay = retryDelay_;
  retryAt_ = now + (delay ? delay / 2 + jitter() % (delay / 2 + 1) : 0);
  if (retryDelay_ == 0) {
    retryDelay_ = config_.retryMin;
  } else {
    retryDelay_ = retryDelay_ * 2 > config_.retryMax ? config_.retryMax : retryDelay_ * 2;
  }
}

void MqttTransportBase::drop(unsigned long now) {
  const bool wasUp = state_ == MqttState::Connected;
  if (state_ == MqttState::Connected || state_ == MqttState::Connecting) ++counters_.lost;
  client_.stop();
  decoder_.reset();
  out_.reset();
  announced_ = false;
  if (wasUp && now - since_ >= kStableTime) retryDelay_ = 0;
  scheduleRetry(now);
}

bool MqttTransportBase::sent(unsigned long now) {
  if (out_.flush()) {
    lastSent_ = now;
    return true;
  }
  drop(now);
  return false;
}

void MqttTransportBase::receive(unsigned long now) {
  if (!client_.connected() && client_.available() <= 0) {
    drop(now);
    return;
  }
  uint8_t chunk[kReadChunk];
  size_t handled = 0;
  while (handled < kMaxReadPerLoop && client_.available() > 0) {
    const int got = client_.read(chunk, sizeof chunk);
    if (got <= 0) return;
    handled += static_cast<size_t>(got);
    for (int i = 0; i < got; ++i) {
      const Decoder::Event event = decoder_.push(chunk[i]);
      if (event == Decoder::Event::Malformed) {
        ++counters_.malformed;
        lastError_ = decoder_.error();
        drop(now);
        return;
      }
      if (event == Decoder::Event::Packet) {
        const MqttState before = state_;
        handle(decoder_.packet(), now);
        if (state_ != before && state_ != MqttState::Connected) return;
      }
    }
  }
}

void MqttTransportBase::handle(const Packet& packet, unsigned long now) {
  lastArrival_ = now;
  pingOutstanding_ = false;  // anything from the broker shows the connection is alive
  if (state_ == MqttState::Connecting) {
    if (packet.type == PacketType::Connack) {
      onConnack(packet, now);
    } else {  // before CONNACK a broker sends nothing else (3.1.1, 3.2)
      ++counters_.malformed;
      lastError_ = DecodeError::BadType;
      drop(now);
    }
    return;
  }
  switch (packet.type) {
    case PacketType::Publish:
      handlePublish(packet);
      sent(now);
      return;
    case PacketType::Puback:
      onPuback(packet.packetId);
      return;
    case PacketType::Suback:
      if (subscriptionsUnacked_ > 0) --subscriptionsUnacked_;
      if (packet.returnCode == 0x80) ++counters_.refused;
      if (subscriptionsUnacked_ == 0 && barrier_ == Barrier::Subscribing) {
        barrier_ = Barrier::Clear;
      }
      return;
    case PacketType::Pingresp:  // in order: the barrier's is the barrierPings_-th from now
      if (pingsUnanswered_ > 0) --pingsUnanswered_;
      if (barrierPings_ > 0 && --barrierPings_ == 0 && barrier_ == Barrier::Pinging) {
        barrier_ = Barrier::Clear;
      }
      return;
    default:  // a second CONNACK
      ++counters_.malformed;
      lastError_ = DecodeError::BadType;
      drop(now);
      return;
  }
}

void MqttTransportBase::onConnack(const Packet& packet, unsigned long now) {
  if (packet.returnCode != 0) {
    ++counters_.refused;
    drop(now);
    return;
  }
  ++counters_.connects;
  if (counters_.connects > 1) ++counters_.reconnects;
  state_ = MqttState::Connected;
  since_ = now;
  for (uint8_t i = 0; i < participant_->inportCount(); ++i) {
    const TopicBytes topic(config_.prefix, role_, roleLength_, participant_->inportId(i));
    if (mqtt::writeSubscribe(out_, nextPacketId(), topic, 1)) ++subscriptionsUnacked_;
  }
  // The SUBACKs are the first barrier: the session's queued messages come before them.
  barrier_ = subscriptionsUnacked_ > 0 ? Barrier::Subscribing : Barrier::Clear;
  barrierRounds_ = 0;
  arrivedSinceBarrier_ = 0;
  announce();
  for (uint8_t i = 0; i < count_; ++i) {  // in send order; unacknowledged ones with DUP
    Slot& slot = slotAt(i);
    if (slot.state == Pending::Queued || slot.state == Pending::Sent) {
      publishSlot(slot, slot.state == Pending::Sent);
    }
  }
  sent(now);
}

void MqttTransportBase::handlePublish(const Packet& packet) {
  if (packet.skipped) {
    ++counters_.oversized;
  } else {
    bool known = false;
    for (uint8_t i = 0; i < participant_->inportCount() && !known; ++i) {
      if (TopicBytes(config_.prefix, role_, roleLength_, participant_->inportId(i))
              .equals(packet.topic, packet.topicLength)) {
        known = true;
        participant_->deliver(i, packet.payload, packet.payloadLength);
      }
    }
    if (!known) ++counters_.unknown;
  }
  // After the callback, which may have sent: the broker then redelivers what a crash lost.
  if (packet.qos == 1 && state_ == MqttState::Connected) {
    mqtt::writePuback(out_, packet.packetId);
    if (arrivedSinceBarrier_ < 0xFFFF) ++arrivedSinceBarrier_;
  }
}

void MqttTransportBase::keepalive(unsigned long now) {
  if (config_.keepalive == 0) return;
  const unsigned long period = static_cast<unsigned long>(config_.keepalive) * 1000UL;
  if (pingOutstanding_) {
    if (now - pingSent_ >= period) drop(now);  // no answer for a whole period: dead
    return;
  }
  if (now - lastSent_ >= period) writePing(now);
}

void MqttTransportBase::writePing(unsigned long now) {
  mqtt::writePingreq(out_);
  if (pingsUnanswered_ < 0xFF) ++pingsUnanswered_;
  if (!pingOutstanding_) {
    pingOutstanding_ = true;
    pingSent_ = now;
  }
  sent(now);
}

bool MqttTransportBase::send(uint8_t outport, const link::ByteSource& payload) {
  if (!participant_ || outport >= participant_->outportCount()) return false;
  if (config_.qos == 0) {
    if (state_ != MqttState::Connected) {
      ++counters_.dropped;
      return false;
    }
    const TopicBytes topic(config_.prefix, role_, roleLength_, participant_->outportId(outport));
    if (!mqtt::writePublishHeader(out_, topic, payload.size(), 0, false, 0)) {
      ++counters_.dropped;
      return false;
    }
    for (size_t i = 0; i < payload.size(); ++i) out_.put(payload.at(i));
    return sent(millis());
  }
  if (count_ == slotCount_ || payload.size() > slotSize_) {
    ++counters_.dropped;
    return false;
  }
  Slot& slot = slotAt(count_++);
  slot.length = static_cast<uint16_t>(payload.size());
  uint8_t* data = dataOf(slot);
  for (size_t i = 0; i < slot.length; ++i) data[i] = payload.at(i);
  slot.port = outport;
  slot.state = Pending::Queued;
  if (state_ == MqttState::Connected) {
    publishSlot(slot, false);
    sent(millis());
  }
  return true;
}

void MqttTransportBase::publishSlot(Slot& slot, bool dup) {
  if (!dup) slot.packetId = nextPacketId();
  const TopicBytes topic(config_.prefix, role_, roleLength_, participant_->outportId(slot.port));
  if (!mqtt::writePublishHeader(out_, topic, slot.length, 1, dup, slot.packetId)) {
    ++counters_.dropped;  // a topic too long for MQTT (begin() refuses those): it can never go
    slot.state = Pending::Acked;
    release();
    return;
  }
  const uint8_t* data = dataOf(slot);
  for (size_t i = 0; i < slot.length; ++i) out_.put(data[i]);
  slot.state = Pending::Sent;
}

void MqttTransportBase::onPuback(uint16_t packetId) {
  for (uint8_t i = 0; i < count_; ++i) {
    Slot& slot = slotAt(i);
    if (slot.state == Pending::Sent && slot.packetId == packetId) slot.state = Pending::Acked;
  }
  release();
}

void MqttTransportBase::release() {
  // Slots free in send order: one acknowledged out of order waits for those before it.
  while (count_ > 0 && slots_[head_].state == Pending::Acked) {
    slots_[head_].state = Pending::Free;
    head_ = static_cast<uint8_t>((head_ + 1) % slotCount_);
    --count_;
  }
}

// -- discovery --------------------------------------------------------------------------------

void MqttTransportBase::writeDiscovery(JsonSink& sink) const {
  JsonWriter json(sink);
  json.beginObject();
  json.key(flash(kProtocolKey)).string(flash(kDiscovery));
  json.key(flash(kCommandKey)).string(flash(kParticipant));
  json.key(flash(kPayloadKey));
  participant_->describe(json, this);
  json.endObject();
}

void MqttTransportBase::announce() {
  JsonWindow counter(0, 0, 0);  // keeps nothing: counts
  writeDiscovery(counter);
  const link::RamBytes topic(reinterpret_cast<const uint8_t*>(kDiscoveryTopic),
                             sizeof kDiscoveryTopic - 1);
  if (!mqtt::writePublishHeader(out_, topic, counter.total(), 0, false, 0)) return;
  writeDiscovery(out_);
  announced_ = true;
  lastAnnounce_ = millis();
}

void MqttTransportBase::head(JsonWriter& json) const {
  json.key(flash(kIdKey)).string(id_);
  json.key(flash(kRoleKey)).string(reinterpret_cast<const uint8_t*>(role_), roleLength_);
}

void MqttTransportBase::port(JsonWriter& json, bool inport, FlashText portId) const {
  const TopicBytes topic(config_.prefix, role_, roleLength_, portId);
  uint8_t text[kMaxTopic];
  const size_t length = topic.size() < kMaxTopic ? topic.size() : kMaxTopic;
  for (size_t i = 0; i < length; ++i) text[i] = topic.at(i);
  json.key(flash(kQueueKey)).string(text, length);
  // On a persistent session the broker keeps QoS 1 messages while the board sleeps; msgflo's
  // port option tells the coordinator to forward into this inport at QoS 1 at least, or a
  // QoS 0 source's messages would be dropped instead (docs/coordinator.md, Forwarding).
  if (inport && !config_.cleanSession) {
    json.key(flash(kOptionsKey)).beginObject().key(flash(kPersistentKey)).boolean(true).endObject();
  }
}

void MqttTransportBase::tail(JsonWriter& json) const {
  json.key(flash(kPeriodKey)).integer(static_cast<long>(config_.discoveryPeriod));
}

// -- for sleepy sketches ----------------------------------------------------------------------

bool MqttTransportBase::settled() {
  if (state_ != MqttState::Connected || !announced_ || count_ > 0) return false;
  if (barrier_ != Barrier::Clear) return false;
  // A full window's worth since the last barrier request: the broker may have held more back
  // until our PUBACKs (all written by now), so ask again behind them.
  const bool more = config_.brokerInflight == 0 ? arrivedSinceBarrier_ > 0
                                                : arrivedSinceBarrier_ >= config_.brokerInflight;
  if (more && barrierRounds_ < kMaxBarrierRounds) {
    ++barrierRounds_;
    ++counters_.barriers;
    arrivedSinceBarrier_ = 0;
    barrier_ = Barrier::Pinging;
    barrierPings_ = static_cast<uint8_t>(pingsUnanswered_ + 1);
    writePing(millis());
    return false;
  }
  return millis() - lastArrival_ >= config_.quietTime;
}

void MqttTransportBase::disconnect() {
  if (state_ == MqttState::Connected) {
    mqtt::writeDisconnect(out_);
    out_.flush();
  }
  if (state_ == MqttState::Connected || state_ == MqttState::Connecting) client_.stop();
  decoder_.reset();
  out_.reset();
  announced_ = false;
  state_ = MqttState::Idle;
}

}  // namespace msgflo
