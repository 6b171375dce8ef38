// The streaming JSON writer: escaping, commas, numbers without printf, overflow, windows.

#include <doctest/doctest.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>

#include "Arduino.h"
#include "MsgfloJson.h"

using namespace msgflo;

namespace {

bool eq(const JsonBufferBase& json, const char* expected) {
  return json.length() == strlen(expected) && memcmp(json.data(), expected, json.length()) == 0;
}

const char* decimalText(float value, uint8_t decimals) {
  static char text[kNumberTextSize];
  formatDecimal(value, decimals, text);
  return text;
}

const char* integerText(long value) {
  static char text[kNumberTextSize];
  formatInteger(value, text);
  return text;
}

}  // namespace

TEST_CASE("strings are escaped as RFC 8259 asks, from RAM and from flash") {
  JsonBuffer<128> json;
  JsonWriter(json).string("a \"q\" b\\c\n\r\t\b\f\x01\x1f\x7f");
  CHECK(eq(json, "\"a \\\"q\\\" b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\""));
  json.clear();
  JsonWriter(json).string(F("\"\\\x02"));
  CHECK(eq(json, "\"\\\"\\\\\\u0002\""));
  json.clear();
  JsonWriter(json).string("gr\xc3\xbc\xc3\x9f");  // UTF-8 passes through
  CHECK(eq(json, "\"gr\xc3\xbc\xc3\x9f\""));
  json.clear();
  const uint8_t bytes[] = {'a', 0, 'b'};  // a NUL inside counted bytes
  JsonWriter(json).string(bytes, sizeof bytes);
  CHECK(eq(json, "\"a\\u0000b\""));
}

TEST_CASE("commas go between items at every depth, never after a key") {
  JsonBuffer<200> json;
  JsonWriter writer(json);
  writer.beginObject();
  writer.key("a").integer(1);
  writer.key(F("b")).beginArray().integer(1).boolean(true).null().beginObject().endObject();
  writer.beginArray().endArray().string("x").endArray();
  writer.key("c").beginObject().key("d").decimal(1.5f, 1).key("e").raw("[]").endObject();
  writer.endObject();
  CHECK(eq(json, "{\"a\":1,\"b\":[1,true,null,{},[],\"x\"],\"c\":{\"d\":1.5,\"e\":[]}}"));
}

TEST_CASE("integers, including the extremes") {
  CHECK(strcmp(integerText(0), "0") == 0);
  CHECK(strcmp(integerText(-42), "-42") == 0);
  CHECK(strcmp(integerText(2147483647L), "2147483647") == 0);
  char expected[kNumberTextSize];
  snprintf(expected, sizeof expected, "%ld", LONG_MIN);
  CHECK(strcmp(integerText(LONG_MIN), expected) == 0);
  snprintf(expected, sizeof expected, "%ld", LONG_MAX);
  CHECK(strcmp(integerText(LONG_MAX), expected) == 0);
}

TEST_CASE("decimals: fixed digits, rounding, no negative zero, null for what JSON lacks") {
  CHECK(strcmp(decimalText(21.5f, 2), "21.50") == 0);
  CHECK(strcmp(decimalText(-3.25f, 1), "-3.3") == 0);  // half away from zero
  CHECK(strcmp(decimalText(0.999f, 2), "1.00") == 0);
  CHECK(strcmp(decimalText(21.5f, 0), "22") == 0);
  CHECK(strcmp(decimalText(-0.001f, 2), "0.00") == 0);
  CHECK(strcmp(decimalText(0.05f, 3), "0.050") == 0);
  CHECK(strcmp(decimalText(1.0f / 3.0f, 9), "0.333333") == 0);  // at most 6 decimals
  CHECK(strcmp(decimalText(-1234567.0f, 1), "-1234567.0") == 0);
  CHECK(strcmp(decimalText(NAN, 2), "null") == 0);
  CHECK(strcmp(decimalText(INFINITY, 2), "null") == 0);
  CHECK(strcmp(decimalText(-INFINITY, 2), "null") == 0);
  CHECK(strcmp(decimalText(5e9f, 2), "null") == 0);
}

TEST_CASE("a full buffer says so instead of cutting silently") {
  JsonBuffer<8> json;
  JsonWriter(json).string("0123456789");
  CHECK(json.overflowed());
  CHECK(json.length() == 8);
  json.clear();
  CHECK_FALSE(json.overflowed());
  CHECK(json.length() == 0);
}

TEST_CASE("a window keeps its slice and counts the whole text") {
  const char* text = "{\"component\":\"X\"}";
  for (size_t offset = 0; offset <= strlen(text); ++offset) {
    uint8_t slice[5] = {};
    JsonWindow window(offset, slice, sizeof slice);
    JsonWriter(window).beginObject().key("component").string("X").endObject();
    CHECK(window.total() == strlen(text));
    const size_t expected = strlen(text) - offset < 5 ? strlen(text) - offset : 5;
    REQUIRE(window.kept() == expected);
    CHECK(memcmp(slice, text + offset, expected) == 0);
  }
}
