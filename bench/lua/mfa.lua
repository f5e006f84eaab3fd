-- Second-factor verification: every request spends one single-use body `{"mfa_token", "code"}` from the file
-- SPEND (one a line, made by bench/mfa_pairs.py; see deal.lua). A thread that runs out sends an empty body,
-- which answers 422 and fails the row: the file must outlast the run.
local deal = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "deal.lua")
local bodies = {}
local next_body = 1

setup = deal.setup

init = function(args)
  bodies = deal.mine()
end

request = function()
  local body = bodies[next_body] or "{}"
  next_body = next_body + 1
  return wrk.format("POST", "/api/v1/auth/mfa/verify", { ["Content-Type"] = "application/json" }, body)
end

-- The first few failures are printed, so that a failing run says why.
local failures = 0
response = function(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
    if failures <= 3 then print("mfa verify failed: " .. status .. " " .. body) end
  end
end
