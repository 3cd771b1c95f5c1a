// libFuzzer target for the provider stream decoders (src/orchestration/agent/wire.h): the
// input is a server's byte stream. Invariants: no crash or sanitizer report; the same
// result (turn or error) whether the bytes arrive whole or one at a time; the text
// streamed out equals the turn's text.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "orchestration/agent/wire.h"

using namespace moat;
using namespace moat::agent;

namespace {

template <class Decoder>
std::string Run(std::string_view bytes, size_t piece) {
  SseParser p;
  Decoder d;
  std::string streamed;
  auto sink = [&](const SseEvent& e) {
    return d.OnEvent(e, [&](std::string_view t) { streamed += t; });
  };
  for (size_t i = 0; i < bytes.size(); i += piece) {
    if (auto s = p.Feed(bytes.substr(i, piece), sink); !s) return "error: " + s.error().message;
  }
  if (auto s = p.Finish(sink); !s) return "error: " + s.error().message;
  auto t = d.Finish();
  if (!t) return "error: " + t.error().message;
  if (t->text != streamed) abort();
  std::string out = t->text + "\n" + t->stop_reason + "\n" + std::to_string(t->usage.input_tokens) +
                    "/" + std::to_string(t->usage.output_tokens);
  for (const ToolCall& c : t->tool_calls) out += "\n" + c.id + " " + c.name + " " + c.arguments;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (Run<OpenAiStream>(bytes, size + 1) != Run<OpenAiStream>(bytes, 1)) abort();
  if (Run<AnthropicStream>(bytes, size + 1) != Run<AnthropicStream>(bytes, 1)) abort();
  return 0;
}
