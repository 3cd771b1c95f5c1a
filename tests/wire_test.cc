// Provider wire formats (src/orchestration/agent/wire.h): server-sent events and the
// streamed turns of OpenAI-compatible and Anthropic APIs, fed in pieces cut at every byte
// (inside UTF-8 characters, JSON tokens and line ends), malformed and truncated streams,
// and the request bodies built from a conversation.
#include "orchestration/agent/wire.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "wire_streams.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;

// Feeds `bytes` cut at the given positions; returns the events or the first error.
Result<std::vector<SseEvent>> Parse(const std::string& bytes, std::vector<size_t> cuts) {
  SseParser p;
  std::vector<SseEvent> out;
  auto sink = [&](const SseEvent& e) {
    out.push_back(e);
    return OkStatus();
  };
  size_t at = 0;
  cuts.push_back(bytes.size());
  for (size_t c : cuts) {
    if (auto s = p.Feed(std::string_view(bytes).substr(at, c - at), sink); !s) return s.error();
    at = c;
  }
  if (auto s = p.Finish(sink); !s) return s.error();
  return out;
}

TEST(Sse, LineEndsCommentsFieldsAndMultiLineData) {
  std::string s =
      ": keep-alive\r\n"
      "event: first\r\ndata: a\r\ndata:b\r\n\r\n"
      "data: only\r\r"
      "id: 7\nretry: 10\ndata: {\"x\":1}\n\n"
      "\n\n"
      "data: tail-without-blank-line";
  auto r = Parse(s, {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].event, "first");
  EXPECT_EQ((*r)[0].data, "a\nb");
  EXPECT_EQ((*r)[1].data, "only");
  EXPECT_EQ((*r)[1].event, "");
  EXPECT_EQ((*r)[2].data, "{\"x\":1}");
  EXPECT_EQ((*r)[3].data, "tail-without-blank-line");
  // The same events whatever the cuts.
  for (size_t i = 0; i <= s.size(); ++i) {
    auto c = Parse(s, {i});
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(c->size(), 4u) << "cut at " << i;
    EXPECT_EQ((*c)[0].data, "a\nb") << "cut at " << i;
    EXPECT_EQ((*c)[1].data, "only") << "cut at " << i;
  }
  // An event that never ends is refused at the limit, not buffered forever.
  std::string endless = "data: " + std::string(SseParser::kMaxEventBytes + 10, 'x');
  EXPECT_FALSE(Parse(endless, {}).ok());
}

// Runs a whole stream through a decoder, cut into pieces of `piece` bytes.
template <class Decoder>
Result<ModelTurn> Decode(const std::string& bytes, size_t piece, std::string* streamed) {
  SseParser p;
  Decoder d;
  auto sink = [&](const SseEvent& e) {
    return d.OnEvent(e, [&](std::string_view t) { *streamed += t; });
  };
  for (size_t i = 0; i < bytes.size(); i += piece) {
    if (auto s = p.Feed(std::string_view(bytes).substr(i, piece), sink); !s) return s.error();
  }
  if (auto s = p.Finish(sink); !s) return s.error();
  return d.Finish();
}

TEST(OpenAiWire, AStreamDecodesTheSameAtEveryCut) {
  std::string bytes = OpenAiStreamBytes();
  for (size_t piece : {bytes.size(), size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{64}}) {
    std::string streamed;
    auto t = Decode<OpenAiStream>(bytes, piece, &streamed);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(t->text, kText);
    EXPECT_EQ(streamed, kText);
    ASSERT_EQ(t->tool_calls.size(), 2u);
    EXPECT_EQ(t->tool_calls[0].id, "call_a");
    EXPECT_EQ(t->tool_calls[0].name, "read_file");
    EXPECT_EQ(t->tool_calls[0].arguments, "{\"path\":\"a.txt\"}");
    EXPECT_EQ(t->tool_calls[1].arguments, "{\"pattern\":\"x\"}");
    EXPECT_EQ(t->usage.input_tokens, 120u);
    EXPECT_EQ(t->usage.output_tokens, 33u);
    EXPECT_EQ(t->stop_reason, "tool_calls");
  }
}

TEST(OpenAiWire, MalformedAndTruncatedStreamsAreErrors) {
  std::string streamed;
  std::string bytes = OpenAiStreamBytes();
  // Cut before the end: no finish_reason, no [DONE].
  auto t = Decode<OpenAiStream>(bytes.substr(0, bytes.find("\"finish_reason\":\"tool_calls\"")), 16,
                                &streamed);
  EXPECT_FALSE(t.ok());
  t = Decode<OpenAiStream>("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}\n\n", 5, &streamed);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("malformed stream event"), std::string::npos);
  t = Decode<OpenAiStream>(OpenAiChunk({{"tool_calls", {{{"function", {{"name", "x"}}}}}}}), 9,
                           &streamed);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("without an index"), std::string::npos);
  t = Decode<OpenAiStream>(OpenAiChunk({{"tool_calls", {{{"index", 999}}}}}), 9, &streamed);
  EXPECT_FALSE(t.ok());
  t = Decode<OpenAiStream>("data: {\"error\":{\"message\":\"rate limited\"}}\n\n", 4, &streamed);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("rate limited"), std::string::npos);
  // A call that never got a name.
  t = Decode<OpenAiStream>(
      OpenAiChunk({{"tool_calls", {{{"index", 0}, {"function", {{"arguments", "{}"}}}}}}},
                  "tool_calls") +
          "data: [DONE]\n\n",
      9, &streamed);
  EXPECT_FALSE(t.ok());
}

TEST(AnthropicWire, AStreamDecodesTheSameAtEveryCut) {
  std::string bytes = AnthropicStreamBytes();
  for (size_t piece : {bytes.size(), size_t{1}, size_t{3}, size_t{11}, size_t{100}}) {
    std::string streamed;
    auto t = Decode<AnthropicStream>(bytes, piece, &streamed);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(t->text, kText);
    EXPECT_EQ(streamed, kText);
    ASSERT_EQ(t->tool_calls.size(), 1u);
    EXPECT_EQ(t->tool_calls[0].id, "toolu_1");
    EXPECT_EQ(t->tool_calls[0].arguments, "{\"path\": \"a.txt\"}");
    EXPECT_EQ(t->usage.input_tokens, 200u);
    EXPECT_EQ(t->usage.output_tokens, 45u);
    EXPECT_EQ(t->stop_reason, "tool_use");
  }
}

TEST(AnthropicWire, MalformedAndTruncatedStreamsAreErrors) {
  std::string streamed;
  std::string bytes = AnthropicStreamBytes();
  EXPECT_FALSE(
      Decode<AnthropicStream>(bytes.substr(0, bytes.rfind("event: message_stop")), 7, &streamed)
          .ok());
  auto t = Decode<AnthropicStream>(
      AnthropicEvent("error",
                     {{"error", {{"type", "overloaded_error"}, {"message", "Overloaded"}}}}),
      5, &streamed);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("overloaded_error: Overloaded"), std::string::npos);
  t = Decode<AnthropicStream>(AnthropicEvent("content_block_start", {{"index", 0}}), 5, &streamed);
  EXPECT_NE(t.error().message.find("before message_start"), std::string::npos);
  std::string orphan =
      AnthropicEvent("message_start", {{"message", json::object()}}) +
      AnthropicEvent("content_block_delta",
                     {{"index", 4}, {"delta", {{"type", "text_delta"}, {"text", "x"}}}});
  t = Decode<AnthropicStream>(orphan, 5, &streamed);
  EXPECT_NE(t.error().message.find("not started"), std::string::npos);
  t = Decode<AnthropicStream>("data: [1,2\n\n", 5, &streamed);
  EXPECT_FALSE(t.ok());
}

// Feeds events one by one (as a long stream would arrive) until the decoder refuses one;
// the error, or "" if it never did.
template <class Decoder>
std::string FeedUntilRefused(Decoder& d, const std::function<std::string(size_t)>& event,
                             size_t max_events, size_t* streamed_bytes) {
  SseParser p;
  auto sink = [&](const SseEvent& e) {
    return d.OnEvent(e, [&](std::string_view t) { *streamed_bytes += t.size(); });
  };
  for (size_t i = 0; i < max_events; ++i) {
    if (auto s = p.Feed(event(i), sink); !s) return s.error().message;
  }
  return "";
}

// A turn's text, its tool calls together, and the stream as a whole are bounded, however
// the provider splits them into events of legal size.
TEST(WireLimits, ATurnsTextIsBounded) {
  const std::string piece(64 * 1024, 'x');
  size_t streamed = 0;
  OpenAiStream oa;
  std::string e = FeedUntilRefused(
      oa,
      [&](size_t) {
        return OpenAiChunk({{"content", piece}});
      },
      1000, &streamed);
  EXPECT_EQ(e, "the turn's text is larger than 8 MiB (the limit)");
  EXPECT_LE(streamed, kMaxTurnTextBytes);
  EXPECT_GT(streamed, kMaxTurnTextBytes - piece.size() - 1);

  streamed = 0;
  AnthropicStream an;
  e = FeedUntilRefused(
      an,
      [&](size_t i) {
        if (i == 0) return AnthropicEvent("message_start", {{"message", json::object()}});
        if (i == 1) {
          return AnthropicEvent("content_block_start",
                                {{"index", 0}, {"content_block", {{"type", "text"}}}});
        }
        return AnthropicEvent("content_block_delta",
                              {{"index", 0}, {"delta", {{"type", "text_delta"}, {"text", piece}}}});
      },
      1000, &streamed);
  EXPECT_EQ(e, "the turn's text is larger than 8 MiB (the limit)");
  EXPECT_LE(streamed, kMaxTurnTextBytes);
}

TEST(WireLimits, ATurnsToolCallsAreBoundedTogether) {
  // 128 calls of just under 1 MiB each would be 128 MiB.
  const std::string args(512 * 1024, 'a');
  size_t streamed = 0;
  OpenAiStream oa;
  std::string e = FeedUntilRefused(
      oa,
      [&](size_t i) {
        return OpenAiChunk(
            {{"tool_calls",
              {{{"index", i / 2}, {"function", {{"name", "t"}, {"arguments", args}}}}}}});
      },
      256, &streamed);
  EXPECT_EQ(e,
            "the turn's tool calls (ids, names and arguments) are larger than 8 MiB (the limit)");
  // Long names and ids count too.
  OpenAiStream names;
  e = FeedUntilRefused(
      names,
      [&](size_t i) {
        return OpenAiChunk(
            {{"tool_calls", {{{"index", i % 100}, {"id", args}, {"function", {{"name", args}}}}}}});
      },
      1000, &streamed);
  EXPECT_NE(e.find("tool calls (ids, names and arguments) are larger"), std::string::npos) << e;

  AnthropicStream an;
  e = FeedUntilRefused(
      an,
      [&](size_t i) {
        if (i == 0) return AnthropicEvent("message_start", {{"message", json::object()}});
        if (i % 3 == 1) {
          return AnthropicEvent(
              "content_block_start",
              {{"index", i},
               {"content_block", {{"type", "tool_use"}, {"id", "x"}, {"name", "t"}}}});
        }
        return AnthropicEvent("content_block_delta",
                              {{"index", i % 3 == 2 ? i - 1 : i - 2},
                               {"delta", {{"type", "input_json_delta"}, {"partial_json", args}}}});
      },
      1000, &streamed);
  EXPECT_NE(e.find("tool calls (ids, names and arguments) are larger than 8 MiB"),
            std::string::npos)
      << e;
}

TEST(WireLimits, AStreamIsBoundedInAll) {
  // Comments and events the decoder ignores still count.
  SseParser p;
  auto sink = [](const SseEvent&) { return OkStatus(); };
  const std::string keepalive = ":" + std::string(1 << 20, ' ') + "\n\n";
  Status s = OkStatus();
  size_t fed = 0;
  for (int i = 0; i < 200 && s.ok(); ++i, fed += keepalive.size()) s = p.Feed(keepalive, sink);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kLimit);
  EXPECT_EQ(s.error().message, "the stream is larger than 64 MiB (the limit)");
  EXPECT_LE(fed, kMaxStreamBytes + keepalive.size());
}

std::vector<Message> Conversation() {
  std::vector<Message> m;
  m.push_back({Message::Role::kSystem, "be brief", {}, {}, {}});
  m.push_back({Message::Role::kUser, "read a and b", {}, {}, {}});
  Message a{Message::Role::kAssistant, "reading", {}, {}, {}};
  a.tool_calls = {{"c1", "read_file", "{\"path\":\"a\"}"}, {"c2", "read_file", "{not json"}};
  m.push_back(a);
  m.push_back({Message::Role::kTool, "{\"ok\":true}", {}, "c1", "read_file"});
  m.push_back({Message::Role::kTool, "{\"ok\":false}", {}, "c2", "read_file"});
  m.push_back({Message::Role::kUser, "[moat] a warning", {}, {}, {}});
  return m;
}

TEST(Wire, RequestBodiesCarryTheConversationInEachFormat) {
  ModelRequest r{"m", Conversation(), {{"read_file", "reads", json{{"type", "object"}}}}};
  json o = OpenAiRequestBody(r);
  EXPECT_EQ(o["stream"], true);
  ASSERT_EQ(o["messages"].size(), 6u);
  EXPECT_EQ(o["messages"][0]["role"], "system");
  EXPECT_EQ(o["messages"][2]["tool_calls"][1]["function"]["arguments"], "{not json");  // as written
  EXPECT_EQ(o["messages"][3]["role"], "tool");
  EXPECT_EQ(o["messages"][3]["tool_call_id"], "c1");
  EXPECT_EQ(o["tools"][0]["function"]["parameters"]["type"], "object");

  json a = AnthropicRequestBody(r, 1024);
  EXPECT_EQ(a["system"], "be brief");
  EXPECT_EQ(a["max_tokens"], 1024);
  ASSERT_EQ(a["messages"].size(), 3u);  // user, assistant, user (both results + the warning)
  EXPECT_EQ(a["messages"][1]["content"][1]["type"], "tool_use");
  EXPECT_EQ(a["messages"][1]["content"][1]["input"]["path"], "a");
  EXPECT_TRUE(a["messages"][1]["content"][2]["input"].empty());  // invalid JSON becomes {}
  const json& results = a["messages"][2]["content"];
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0]["type"], "tool_result");
  EXPECT_EQ(results[1]["tool_use_id"], "c2");
  EXPECT_EQ(results[2]["type"], "text");
  EXPECT_EQ(a["tools"][0]["input_schema"]["type"], "object");
}

}  // namespace
}  // namespace moat::agent
