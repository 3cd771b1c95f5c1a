// Model providers over HTTP: OpenAI-compatible Chat Completions (OpenAI, Ollama,
// llama.cpp server, vLLM, OpenRouter) and Anthropic Messages, streamed (wire.h decodes),
// with retries and backoff on 429 and 5xx (Retry-After honoured up to a cap), timeouts
// and cancellation. The transport is net::StreamingHttp (libcurl, from the plugin).
#pragma once

#include <memory>
#include <string>

#include "execution/net/http_stream.h"
#include "orchestration/agent/provider.h"

namespace moat::agent {

struct HttpProviderConfig {
  enum class Kind { kOpenAi, kAnthropic };
  Kind kind = Kind::kOpenAi;
  std::string name;  // as configured ("local", "claude"); "" = the kind's name
  // API root: "https://api.openai.com/v1" (POST BASE/chat/completions) or
  // "https://api.anthropic.com" (POST BASE/v1/messages).
  std::string base_url;
  std::string api_key;            // may be empty (local servers)
  uint32_t max_tokens = 4096;     // Anthropic requires it
  int max_attempts = 4;           // first try plus retries
  uint64_t backoff_us = 500'000;  // doubled per retry, with jitter
  uint64_t max_backoff_us = 30'000'000;
  uint64_t idle_timeout_us = 120'000'000;
  uint64_t total_timeout_us = 600'000'000;
  std::string ca_file;
  // (provider_config.h fills this from the config file, the environment and flags.)
};

class HttpProvider : public Provider {
 public:
  HttpProvider(HttpProviderConfig config, std::shared_ptr<net::StreamingHttp> http)
      : config_(std::move(config)), http_(std::move(http)) {}
  std::string name() const override {
    if (!config_.name.empty()) return config_.name;
    return config_.kind == HttpProviderConfig::Kind::kOpenAi ? "openai" : "anthropic";
  }
  Result<ModelTurn> Complete(const ModelRequest& request,
                             const std::function<void(std::string_view)>& on_text,
                             const CancelToken* cancel) override;

 private:
  HttpProviderConfig config_;
  std::shared_ptr<net::StreamingHttp> http_;
};

}  // namespace moat::agent
