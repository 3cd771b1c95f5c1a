// Secrets a guest can use but never read: placeholders in a request.
//
// A guest writes {{secret:NAME}} in a header value, the URL's path or query, or the body;
// the host substitutes the value only in a request to a host the secret is bound to, for
// a secret the run was granted. The value never enters guest memory, a tool's output, the
// run report or a log. The store and leak detection are in secret_store.h.
#pragma once

#include <vector>

#include "base/result.h"
#include "execution/net/egress.h"
#include "execution/net/http_client.h"
#include "execution/net/secret_store.h"

namespace moat::net {

// Replaces every {{secret:NAME}} in the request with the value of the granted secret NAME.
// kDenied when the request already carries a granted secret's value (raw or encoded), a
// placeholder names a secret not granted, the URL's host is not one the secret is bound
// to, the placeholder is in a header the secret is not bound to (or outside headers when
// it is bound to some), or in the URL's host or port. `url` is the request's URL as the
// egress policy checked it.
// True when `url`'s host is one the secret may be sent to.
bool SecretBoundTo(const Secret& s, const Url& url);

Result<HttpRequest> SubstituteSecrets(const HttpRequest& request, const Url& url,
                                      const std::vector<Secret>& granted);

}  // namespace moat::net
