-- bench/portal_load.py: each connection waits 500-1500 ms (mean 1 s) between
-- requests, so N connections are N citizens downloading about once a second.
math.randomseed(os.time())
function delay()
  return math.random(500, 1500)
end
