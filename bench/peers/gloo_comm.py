# Gloo peer for `npm run bench -- comm`: the same collectives and sizes through
# PyTorch's Gloo backend (Debian python3-torch). One process per rank; rank 0
# prints one JSON line per (collective, size): {"coll", "bytes", "time_s"}, and
# every rank one with its CPU seconds (user + system, all threads) per operation:
# {"coll", "bytes", "cpu_s"}.
import json, os, sys, time
import torch
import torch.distributed as dist

def main():
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    sizes = [int(s) for s in sys.argv[1].split(",")]
    colls = sys.argv[2].split(",")
    # "warm:timed" operations per size, chosen by bench/comm.ts (the same counts as ours)
    iter_counts = [tuple(int(x) for x in s.split(":")) for s in sys.argv[3].split(",")]
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{os.environ['MASTER_PORT']}", rank=rank, world_size=world)
    for coll in colls:
        for nbytes, (warm, iters) in zip(sizes, iter_counts):
            n = max(1, nbytes // 4)
            per = max(1, n // world)
            if coll == "all_reduce":
                t = torch.ones(n)
                op = lambda: dist.all_reduce(t)
            elif coll == "all_gather":
                t = torch.ones(per)
                outs = [torch.empty(per) for _ in range(world)]
                op = lambda: dist.all_gather(outs, t)
            elif coll == "reduce_scatter":
                t = [torch.ones(per) for _ in range(world)]
                out = torch.empty(per)
                op = lambda: dist.reduce_scatter(out, t)
            elif coll == "all_to_all":
                t = torch.ones(per * world)
                out = torch.empty(per * world)
                op = lambda: dist.all_to_all_single(out, t)
            else:
                continue
            try:
                for _ in range(warm):
                    op()
                dist.barrier()
                c0 = time.process_time()
                t0 = time.perf_counter()
                for _ in range(iters):
                    op()
                dist.barrier()
                dt = (time.perf_counter() - t0) / iters
                cpu = (time.process_time() - c0) / iters
            except Exception as e:  # Gloo in torch 1.13 lacks some collectives (reduce_scatter)
                dt = None
                if rank == 0:
                    print(json.dumps({"coll": coll, "bytes": nbytes, "time_s": None, "error": str(e).splitlines()[0][:200]}), flush=True)
                dist.barrier()
                break
            if rank == 0:
                print(json.dumps({"coll": coll, "bytes": nbytes, "time_s": dt}), flush=True)
            print(json.dumps({"coll": coll, "bytes": nbytes, "cpu_s": cpu}), flush=True)
    dist.destroy_process_group()

if __name__ == "__main__":
    main()
