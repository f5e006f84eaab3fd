-- Shared by the scripts whose requests each spend a single-use value (a refresh token, a second-factor answer):
-- the lines of the file named by the environment variable SPEND, dealt out between the THREADS threads of wrk
-- (thread 1 takes lines 1, 1 + THREADS, …). Load with `local deal = dofile("<path>/deal.lua")`, then set
-- `setup = deal.setup` and call `deal.mine()` from `init`.
local deal = {}

local counter = 0
deal.setup = function(thread)
  counter = counter + 1
  thread:set("id", counter)
end

-- This thread's share of the file's lines, in order (`id` is the global wrk sets from `setup`).
deal.mine = function()
  local lines = {}
  for line in io.lines(os.getenv("SPEND")) do
    if line ~= "" then lines[#lines + 1] = line end
  end
  local threads = tonumber(os.getenv("THREADS"))
  local share = {}
  for i = id, #lines, threads do share[#share + 1] = lines[i] end
  return share
end

return deal
