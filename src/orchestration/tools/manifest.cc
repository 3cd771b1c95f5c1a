#include "orchestration/tools/manifest.h"

#include <cstring>
#include <regex>

#include "base/json_text.h"

namespace moat::tools {

namespace {

using nlohmann::json;

Error Bad(const std::string& msg) { return MakeError(ErrorCode::kInvalidArgument, msg); }

// A bounds-checked reader over module bytes.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> b) : b_(b) {}
  size_t pos() const { return pos_; }
  bool done() const { return pos_ == b_.size(); }
  // Unsigned LEB128 of at most 5 bytes that fits 32 bits.
  bool U32(uint32_t* out) {
    uint64_t v = 0;
    for (int i = 0; i < 5; ++i) {
      if (pos_ >= b_.size()) return false;
      uint8_t byte = b_[pos_++];
      v |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
      if (!(byte & 0x80)) {
        if (v > UINT32_MAX) return false;
        *out = static_cast<uint32_t>(v);
        return true;
      }
    }
    return false;
  }
  bool Byte(uint8_t* out) {
    if (pos_ >= b_.size()) return false;
    *out = b_[pos_++];
    return true;
  }
  bool Skip(size_t n) {
    if (n > b_.size() - pos_) return false;
    pos_ += n;
    return true;
  }

 private:
  std::span<const uint8_t> b_;
  size_t pos_ = 0;
};

struct Section {
  uint8_t id;
  size_t start, end;                // the whole section, header included
  size_t payload_start;             // after the size (for custom: at the name length)
  std::string_view custom_name;     // custom sections only
  size_t custom_payload_start = 0;  // custom sections only: after the name
};

constexpr uint8_t kMagic[8] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};

Result<std::vector<Section>> Sections(std::span<const uint8_t> wasm) {
  if (wasm.size() < 8 || std::memcmp(wasm.data(), kMagic, 8) != 0) {
    return MakeError(ErrorCode::kInvalidModule, "not a wasm module (bad magic or version)");
  }
  Reader r(wasm);
  r.Skip(8);
  std::vector<Section> out;
  while (!r.done()) {
    Section s{};
    s.start = r.pos();
    uint32_t size = 0;
    if (!r.Byte(&s.id) || !r.U32(&size)) {
      return MakeError(ErrorCode::kInvalidModule,
                       "malformed section header at byte " + std::to_string(s.start));
    }
    s.payload_start = r.pos();
    if (!r.Skip(size)) {
      return MakeError(ErrorCode::kInvalidModule, "section at byte " + std::to_string(s.start) +
                                                      " runs past the end of the module");
    }
    s.end = r.pos();
    if (s.id == 0) {
      Reader n(wasm.subspan(s.payload_start, size));
      uint32_t len = 0;
      if (!n.U32(&len) || !n.Skip(len)) {
        return MakeError(ErrorCode::kInvalidModule,
                         "malformed custom section name at byte " + std::to_string(s.start));
      }
      size_t name_at = s.payload_start + (n.pos() - len);
      s.custom_name = std::string_view(reinterpret_cast<const char*>(wasm.data()) + name_at, len);
      s.custom_payload_start = name_at + len;
    }
    out.push_back(s);
  }
  return out;
}

void PutU32(std::vector<uint8_t>* out, uint32_t v) {
  do {
    uint8_t byte = v & 0x7f;
    v >>= 7;
    if (v) byte |= 0x80;
    out->push_back(byte);
  } while (v);
}

}  // namespace

Result<std::vector<std::string>> StringList(const json& j, const std::string& where) {
  std::vector<std::string> out;
  if (!j.is_array()) return Bad(where + ": expected an array of strings");
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_string() || j[i].get_ref<const std::string&>().empty()) {
      return Bad(where + "/" + std::to_string(i) + ": expected a non-empty string");
    }
    out.push_back(j[i].get<std::string>());
  }
  return out;
}

// A limit given as a number or as text with a unit.
Result<uint64_t> LimitValue(const json& v, const std::string& where,
                            Result<uint64_t> (*parse)(std::string_view)) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_string()) {
    auto r = parse(v.get<std::string>());
    if (!r) return Bad(where + ": " + r.error().message);
    return *r;
  }
  return Bad(where + ": expected a positive number or text such as \"64M\" or \"10s\"");
}

std::optional<uint64_t>* ToolLimitSlot(ToolLimits* l, const LimitField& f) {
  if (!(f.uses & kLimitToolField)) return nullptr;
  if (f.run == &Limits::fuel) return &l->fuel;
  if (f.run == &Limits::memory_bytes) return &l->memory_bytes;
  if (f.run == &Limits::timeout_us) return &l->timeout_us;
  if (f.run == &Limits::max_output_bytes) return &l->max_output_bytes;
  return nullptr;
}

const std::optional<uint64_t>* ToolLimitSlot(const ToolLimits* l, const LimitField& f) {
  return ToolLimitSlot(const_cast<ToolLimits*>(l), f);
}

Result<uint64_t> ReadToolLimit(const LimitField& f, const json& v, const std::string& where,
                               ToolLimits* out) {
  std::optional<uint64_t>* slot = ToolLimitSlot(out, f);
  if (slot == nullptr) return Bad(where + ": not a limit of a tool");
  auto n = LimitValue(v, where, f.parse);
  if (!n) return n.error();
  *slot = *n;
  return *n;
}

std::string_view FsAccessName(FsAccess a) {
  switch (a) {
    case FsAccess::kNone: return "none";
    case FsAccess::kRead: return "read";
    case FsAccess::kWrite: return "write";
  }
  return "none";
}

Result<ToolManifest> ParseManifest(std::string_view text) {
  if (text.size() > kMaxManifestBytes) {
    return Bad("manifest is " + std::to_string(text.size()) + " bytes, more than the " +
               std::to_string(kMaxManifestBytes) + " allowed");
  }
  auto parsed = ParseJson(text);
  if (!parsed) return Bad("manifest is " + parsed.error().message);
  json j = std::move(*parsed);
  if (!j.is_object()) return Bad("manifest must be a JSON object");
  static const char* const kKnown[] = {"name",         "version", "description", "arguments",
                                       "capabilities", "limits",  "$schema"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* k : kKnown) known = known || it.key() == k;
    if (!known) return Bad("manifest: unknown field \"" + it.key() + "\"");
  }
  ToolManifest m;
  auto str = [&](const char* key, std::string* out, size_t max) -> Status {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
      return Bad(std::string("manifest: \"") + key + "\" must be a non-empty string");
    }
    *out = it->get<std::string>();
    if (out->size() > max) {
      return Bad(std::string("manifest: \"") + key + "\" is longer than " + std::to_string(max));
    }
    return OkStatus();
  };
  if (auto s = str("name", &m.name, 64); !s) return s.error();
  static const std::regex kName("[a-z][a-z0-9_]*");
  if (!std::regex_match(m.name, kName)) {
    return Bad("manifest: name \"" + m.name +
               "\" must be lowercase letters, digits and '_', starting with a letter");
  }
  if (auto s = str("version", &m.version, 64); !s) return s.error();
  if (auto s = str("description", &m.description, 8192); !s) return s.error();

  auto args = j.find("arguments");
  if (args == j.end()) return Bad("manifest: \"arguments\" (a JSON Schema) is missing");
  if (!args->is_object() || args->value("type", json()) != "object") {
    return Bad("manifest: \"arguments\" must be a JSON Schema with \"type\": \"object\"");
  }
  m.arguments = *args;
  auto schema = JsonSchema::Compile(m.arguments);
  if (!schema) return Bad("manifest: arguments schema: " + schema.error().message);
  m.schema = std::move(*schema);

  if (auto caps = j.find("capabilities"); caps != j.end()) {
    if (!caps->is_object()) return Bad("manifest: \"capabilities\" must be an object");
    for (auto it = caps->begin(); it != caps->end(); ++it) {
      const std::string& k = it.key();
      std::string where = "manifest: capabilities/" + k;
      if (k == "filesystem") {
        if (*it == "none") {
          m.capabilities.filesystem = FsAccess::kNone;
        } else if (*it == "read") {
          m.capabilities.filesystem = FsAccess::kRead;
        } else if (*it == "write") {
          m.capabilities.filesystem = FsAccess::kWrite;
        } else {
          return Bad(where + ": must be \"none\", \"read\" or \"write\"");
        }
      } else if (k == "network" || k == "secrets" || k == "env") {
        auto list = StringList(*it, where);
        if (!list) return list.error();
        (k == "network"   ? m.capabilities.network
         : k == "secrets" ? m.capabilities.secrets
                          : m.capabilities.env) = *list;
      } else {
        return Bad("manifest: unknown capability \"" + k + "\"");
      }
    }
  }
  if (auto lim = j.find("limits"); lim != j.end()) {
    if (!lim->is_object()) return Bad("manifest: \"limits\" must be an object");
    for (auto it = lim->begin(); it != lim->end(); ++it) {
      const std::string& k = it.key();
      std::string where = "manifest: limits/" + k;
      const LimitField* f = FindLimitField(k, kLimitToolField);
      if (f == nullptr) return Bad("manifest: unknown limit \"" + k + "\"");
      auto v = ReadToolLimit(*f, *it, where, &m.limits);
      if (!v) return v.error();
      if (*v == 0) return Bad(where + ": must be more than 0");
    }
  }
  return m;
}

nlohmann::json ManifestJson(const ToolManifest& m) {
  json caps = {{"filesystem", FsAccessName(m.capabilities.filesystem)},
               {"network", m.capabilities.network},
               {"secrets", m.capabilities.secrets},
               {"env", m.capabilities.env}};
  // Numbers in each field's own unit, which ParseManifest reads back as they are.
  json limits = json::object();
  for (const LimitField& f : LimitFields()) {
    if (const std::optional<uint64_t>* v = ToolLimitSlot(&m.limits, f); v && *v) {
      limits[std::string(f.name)] = **v;
    }
  }
  return {{"name", m.name},           {"version", m.version}, {"description", m.description},
          {"arguments", m.arguments}, {"capabilities", caps}, {"limits", limits}};
}

Result<std::optional<std::string>> FindCustomSection(std::span<const uint8_t> wasm,
                                                     std::string_view name) {
  auto sections = Sections(wasm);
  if (!sections) return sections.error();
  for (const Section& s : *sections) {
    if (s.id == 0 && s.custom_name == name) {
      return std::optional<std::string>(
          std::string(reinterpret_cast<const char*>(wasm.data()) + s.custom_payload_start,
                      s.end - s.custom_payload_start));
    }
  }
  return std::optional<std::string>();
}

Result<std::vector<uint8_t>> SetCustomSection(std::span<const uint8_t> wasm, std::string_view name,
                                              std::string_view payload) {
  auto sections = Sections(wasm);
  if (!sections) return sections.error();
  std::vector<uint8_t> out(wasm.begin(), wasm.begin() + 8);
  for (const Section& s : *sections) {
    if (s.id == 0 && s.custom_name == name) continue;
    out.insert(out.end(), wasm.begin() + s.start, wasm.begin() + s.end);
  }
  std::vector<uint8_t> body;
  PutU32(&body, static_cast<uint32_t>(name.size()));
  body.insert(body.end(), name.begin(), name.end());
  body.insert(body.end(), payload.begin(), payload.end());
  if (body.size() > UINT32_MAX) return Bad("custom section too large");
  out.push_back(0);
  PutU32(&out, static_cast<uint32_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

}  // namespace moat::tools
