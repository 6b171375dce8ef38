/* The simavr harness (../simavr/harness.c: an ATmega328P at 16 MHz, UART0 on a pty) plus a
 * trace of one output pin: with MSGFLO_SIMAVR_TRACE=FILE every change of PORTB2 (Arduino pin
 * 10, RemoteSockets' TX pin) is appended to FILE as a line
 *
 *     <cycle> <level>
 *
 * with the simulated CPU cycle (16 per microsecond) at which the pin changed, flushed at once so
 * a test can read it while the board runs. Built and used by tests/bridges/test_firmware_ook.py:
 *
 *     gcc -I/usr/include/simavr firmware/test/ook/pin_trace.c -o pin_trace -lsimavr \
 *         -lsimavrparts -lutil
 *     MSGFLO_SIMAVR_TRACE=/tmp/pin.txt ./pin_trace RemoteSockets.elf   # prints /dev/pts/N
 *
 * The harness is included, not copied, so the pty and UART pacing stay those the serial HIL
 * test uses; the trace is hooked in right after avr_init(), where the I/O ports exist, by
 * wrapping that one call with a macro.
 */
#include <sim_avr.h>

#include <avr_ioport.h>
#include <stdio.h>
#include <stdlib.h>

static int traced_init(avr_t* avr);
#define avr_init(avr) traced_init(avr)
#define main harness_main
#include "../simavr/harness.c"
#undef main
#undef avr_init

#define TRACE_PORT 'B'
#define TRACE_PIN 2

static FILE* trace = NULL;
static int last_level = -1;

static void pin_changed(struct avr_irq_t* irq, uint32_t value, void* param) {
  (void)irq;
  avr_t* board = (avr_t*)param;
  int level = value ? 1 : 0;
  if (level == last_level) return; /* a write of the same level is not an edge */
  last_level = level;
  fprintf(trace, "%llu %d\n", (unsigned long long)board->cycle, level);
  fflush(trace);
}

static int traced_init(avr_t* board) {
  int result = avr_init(board);
  if (result == 0 && trace != NULL) {
    avr_irq_t* pin = avr_io_getirq(board, AVR_IOCTL_IOPORT_GETIRQ(TRACE_PORT), TRACE_PIN);
    avr_irq_register_notify(pin, pin_changed, board);
  }
  return result;
}

int main(int argc, char** argv) {
  const char* path = getenv("MSGFLO_SIMAVR_TRACE");
  if (path != NULL) {
    trace = fopen(path, "a"); /* appends: a test may truncate the file between commands */
    if (trace == NULL) {
      perror("pin_trace: MSGFLO_SIMAVR_TRACE");
      return 1;
    }
  }
  return harness_main(argc, argv);
}
