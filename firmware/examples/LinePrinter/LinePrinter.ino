// LinePrinter: a sketch that speaks no protocol at all, only text lines, for the serial
// bridge's line mode (docs/serial-bridge.md, Line mode). It prints a reading every half second
//
//     temp=21.5 count=7
//
// and reads lines back: `on`, `off` or `toggle` switch the LED, answered with `led=1` or
// `led=0`. Anything else is answered with `error=unknown`; a line too long for the buffer is
// discarded up to its end. Plain Arduino Serial, no library.

static const uint8_t kLed = LED_BUILTIN;
static const unsigned long kIntervalMs = 500;

static char line[16];
static uint8_t length = 0;
static bool overflowed = false;  // discarding the rest of a line longer than `line`
static bool ledOn = false;
static unsigned long lastPrinted = 0;
static unsigned long count = 0;

static void setLed(bool on) {
  ledOn = on;
  digitalWrite(kLed, on ? HIGH : LOW);
  Serial.print(F("led="));
  Serial.println(on ? 1 : 0);
}

static void onLine() {
  if (strcmp(line, "on") == 0) {
    setLed(true);
  } else if (strcmp(line, "off") == 0) {
    setLed(false);
  } else if (strcmp(line, "toggle") == 0) {
    setLed(!ledOn);
  } else {
    Serial.println(F("error=unknown"));
  }
}

static void readLines() {
  while (Serial.available() > 0) {
    const char c = static_cast<char>(Serial.read());
    if (c == '\r') continue;
    if (c != '\n') {
      if (length < sizeof line - 1) {
        line[length++] = c;
      } else {
        overflowed = true;
      }
      continue;
    }
    line[length] = '\0';
    if (!overflowed) onLine();
    length = 0;
    overflowed = false;
  }
}

void setup() {
  Serial.begin(9600);
  pinMode(kLed, OUTPUT);
  Serial.println(F("LinePrinter 1.0"));  // a banner: a line no port takes
}

void loop() {
  readLines();
  if (millis() - lastPrinted >= kIntervalMs) {
    lastPrinted = millis();
    Serial.print(F("temp="));
    Serial.print(21.5, 1);
    Serial.print(F(" count="));
    Serial.println(++count);
  }
}
