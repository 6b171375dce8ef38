// Provisioning over USB (MsgfloProvision) against tests/vectors/provisioning.json, the vectors
// the gateway's Python codec passes: packets, bad ones, streams with log output between
// packets, and the board's answers step by step; plus garbage under the sanitizers.

#include <doctest/doctest.h>
#include <stdio.h>

#include "Arduino.h"
#include "MsgfloProvision.h"
#include "hex_bytes.h"
#include "provisioning_vectors.h"

using namespace msgflo;
using namespace msgflo::improv;
using namespace hex_bytes;
namespace pv = provision_vectors;

namespace {

// The events of a stream as the vectors write them: "packet:1,error:bad_checksum".
void describe(PacketDecoder::Event event, const PacketDecoder& decoder, char* out, size_t size) {
  char item[32] = "";
  if (event == PacketDecoder::Event::Packet) {
    snprintf(item, sizeof item, "packet:%u", static_cast<unsigned>(decoder.type()));
  } else if (event == PacketDecoder::Event::BadChecksum) {
    snprintf(item, sizeof item, "error:bad_checksum");
  } else if (event == PacketDecoder::Event::BadVersion) {
    snprintf(item, sizeof item, "error:bad_version");
  } else {
    return;
  }
  const size_t used = strlen(out);
  snprintf(out + used, size - used, "%s%s", used ? "," : "", item);
}

// The events a fresh decoder reports for the bytes of `hex`, appended to `out`.
void decodeEvents(const char* hex, char* out, size_t size) {
  const Bytes wire = unhex(hex);
  PacketDecoder decoder;
  for (size_t k = 0; k < wire.length; ++k) {
    describe(decoder.push(wire.data[k]), decoder, out, size);
  }
}

// A store in RAM that counts its saves.
class MemoryStore : public CredentialStore {
 public:
  bool load(Credentials& credentials) override {
    if (!has_) return false;
    credentials = saved_;
    return true;
  }
  bool save(const Credentials& credentials) override {
    ++saves_;
    if (failing_) return false;
    saved_ = credentials;
    has_ = true;
    return true;
  }
  Credentials saved_ = {};
  bool has_ = false;
  bool failing_ = false;
  int saves_ = 0;
};

Credentials vectorCredentials() {
  Credentials c = {};
  strcpy(c.ssid, pv::kStored.ssid);
  strcpy(c.passphrase, pv::kStored.passphrase);
  strcpy(c.role, pv::kStored.role);
  strcpy(c.host, pv::kStored.host);
  strcpy(c.user, pv::kStored.user);
  strcpy(c.password, pv::kStored.password);
  c.port = static_cast<uint16_t>(pv::kStored.port);
  sealCredentials(c);
  return c;
}

const DeviceInfo kInfo = {pv::kDeviceInfo[0], pv::kDeviceInfo[1], pv::kDeviceInfo[2],
                          pv::kDeviceInfo[3]};

const char* stateName(ProvisionState state) {
  switch (state) {
    case ProvisionState::Joining:
      return "joining";
    case ProvisionState::Provisioned:
      return "provisioned";
    default:
      return "unprovisioned";
  }
}

}  // namespace

TEST_CASE("improv: checksums") {
  for (size_t i = 0; i < pv::kChecksumsCount; ++i) {
    const Bytes input = unhex(pv::kChecksums[i].input);
    CHECK(checksum(input.data, input.length) == pv::kChecksums[i].sum);
  }
}

TEST_CASE("improv: packets decode and encode as the vectors") {
  for (size_t i = 0; i < pv::kPacketsCount; ++i) {
    const pv::Packet& vector = pv::kPackets[i];
    INFO(vector.name);
    const Bytes data = unhex(vector.data);
    const Bytes wire = unhex(vector.wire);
    PacketDecoder decoder;
    int packets = 0;
    for (size_t k = 0; k < wire.length; ++k) {
      if (decoder.push(wire.data[k]) == PacketDecoder::Event::Packet) {
        ++packets;
        CHECK(decoder.type() == vector.type);
        CHECK(same(decoder.data(), decoder.length(), data));
      }
    }
    CHECK(packets == 1);
    fake::BufferPrint<800> out;
    writePacket(out, static_cast<PacketType>(vector.type), data.data, data.length);
    CHECK(same(out.data(), out.length(), wire));
  }
}

TEST_CASE("improv: bad checksums and versions are reported; bad bodies are the reader's") {
  for (size_t i = 0; i < pv::kInvalidCount; ++i) {
    const pv::Invalid& vector = pv::kInvalid[i];
    INFO(vector.name);
    char events[128] = "";
    decodeEvents(vector.wire, events, sizeof events);
    if (strcmp(vector.error, "bad_body") == 0) {
      CHECK(strncmp(events, "packet:", 7) == 0);  // the layout is checked by the service
    } else {
      CHECK(strcmp(events + strlen("error:"), vector.error) == 0);
    }
  }
}

TEST_CASE("improv: streams with log output between packets") {
  for (size_t i = 0; i < pv::kStreamsCount; ++i) {
    const pv::Stream& vector = pv::kStreams[i];
    INFO(vector.name);
    char events[256] = "";
    decodeEvents(vector.wire, events, sizeof events);
    CHECK(strcmp(events, vector.events) == 0);
  }
}

TEST_CASE("improv: strings") {
  const uint8_t data[] = {2, 'a', 'b', 0, 1, 'c'};
  char out[3];
  CHECK(countStrings(data, sizeof data) == 3);
  CHECK(readString(data, sizeof data, 0, out, sizeof out));
  CHECK(strcmp(out, "ab") == 0);
  CHECK(readString(data, sizeof data, 1, out, sizeof out));
  CHECK(strcmp(out, "") == 0);
  CHECK_FALSE(readString(data, sizeof data, 0, out, 2));  // does not fit
  CHECK_FALSE(readString(data, sizeof data, 3, out, sizeof out));
  const uint8_t cut[] = {5, 'a'};
  CHECK(countStrings(cut, sizeof cut) == 0);
  const uint8_t nul[] = {2, 'a', 0};
  CHECK_FALSE(readString(nul, sizeof nul, 0, out, sizeof out));
}

TEST_CASE("provisioning: the board answers as the vectors say") {
  for (size_t i = 0; i < pv::kExchangesCount; ++i) {
    const pv::Exchange& exchange = pv::kExchanges[i];
    INFO(exchange.name);
    MemoryStore store;
    if (exchange.stored) {
      store.saved_ = vectorCredentials();
      store.has_ = true;
    }
    fake::ScriptedStream<8192> stream;
    Provisioning provisioning(stream, store, kInfo);
    provisioning.begin();
    size_t written = 0;
    for (size_t s = 0; s < exchange.count; ++s) {
      const pv::Step& step = pv::kSteps[exchange.first + s];
      INFO("step " << s);
      if (strcmp(step.call, "joined") == 0) {
        provisioning.joined();
      } else if (strcmp(step.call, "join_failed") == 0) {
        provisioning.joinFailed();
      } else {
        const Bytes send = unhex(step.send);
        stream.script(send.data, send.length);
        provisioning.loop();
      }
      const Bytes expect = unhex(step.expect);
      const auto& out = stream.written();
      CHECK(same(out.data() + written, out.length() - written, expect));
      written = out.length();
      CHECK(strcmp(stateName(provisioning.state()), step.state) == 0);
    }
  }
}

TEST_CASE("provisioning: what is stored is what the gateway sent") {
  MemoryStore store;
  fake::ScriptedStream<8192> stream;
  Provisioning provisioning(stream, store, kInfo);
  provisioning.begin();
  CHECK(provisioning.state() == ProvisionState::Unprovisioned);
  const pv::Exchange& exchange = pv::kExchanges[0];
  for (size_t s = 0; s < 5; ++s) {  // up to the WiFi settings
    const Bytes send = unhex(pv::kSteps[exchange.first + s].send);
    stream.script(send.data, send.length);
  }
  provisioning.loop();
  REQUIRE(provisioning.state() == ProvisionState::Joining);
  CHECK(strcmp(provisioning.credentials().ssid, pv::kStored.ssid) == 0);
  CHECK(store.saves_ == 0);  // nothing is saved before the WiFi is joined
  provisioning.joined();
  REQUIRE(store.has_);
  const Credentials expected = vectorCredentials();
  CHECK(memcmp(&store.saved_, &expected, sizeof expected) == 0);
  CHECK(credentialsValid(store.saved_));
  CHECK(provisioning.provisioned());

  // A board that boots with them is provisioned; a damaged copy is not.
  MemoryStore damaged;
  damaged.saved_ = expected;
  damaged.saved_.password[0] ^= 1;
  damaged.has_ = true;
  Provisioning again(stream, damaged, kInfo);
  again.begin();
  CHECK(again.state() == ProvisionState::Unprovisioned);
  Credentials erased;
  memset(&erased, 0xFF, sizeof erased);  // an erased EEPROM
  CHECK_FALSE(credentialsValid(erased));
}

TEST_CASE("provisioning: a store that cannot save keeps the board unprovisioned") {
  MemoryStore store;
  store.failing_ = true;
  fake::ScriptedStream<8192> stream;
  Provisioning provisioning(stream, store, kInfo);
  provisioning.begin();
  const pv::Exchange& exchange = pv::kExchanges[0];
  for (size_t s = 3; s < 5; ++s) {  // broker settings and WiFi
    const Bytes send = unhex(pv::kSteps[exchange.first + s].send);
    stream.script(send.data, send.length);
  }
  provisioning.loop();
  provisioning.joined();
  CHECK(store.saves_ == 1);
  CHECK(provisioning.state() == ProvisionState::Unprovisioned);
}

TEST_CASE("provisioning: garbage never crashes it") {
  uint32_t seed = 18;
  MemoryStore store;
  for (int round = 0; round < 20; ++round) {
    fake::ScriptedStream<8192> stream;
    Provisioning provisioning(stream, store, kInfo);
    provisioning.begin();
    uint8_t noise[4096];
    for (size_t i = 0; i < sizeof noise; ++i) {
      seed = seed * 1103515245u + 12345u;
      noise[i] = static_cast<uint8_t>(seed >> 16);
      // Headers now and then, so that packets (mostly broken) reach the service.
      if (i + 10 < sizeof noise && (seed >> 8) % 97 == 0) {
        memcpy(noise + i, "IMPROV\x01\x03", 8);
        i += 7;
      }
    }
    stream.script(noise, sizeof noise);
    provisioning.loop();
    CHECK(stream.available() == 0);
  }
}
