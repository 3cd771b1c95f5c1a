// Spins forever: only fuel, the deadline or cancellation can stop it.
int main(void) {
  volatile unsigned x = 0;
  for (;;) x++;
}
