"""``koroberta corpus {download,extract,clean,sentences,split,build,backends}``: thin wrappers over the library
functions.

Single machine: ``koroberta corpus build SOURCE OUT`` (= ``build_corpus``). SLURM array (see
``scripts/corpus_array.slurm``): ``extract SOURCE OUT --shard $i --num-shards N`` per task, then ``clean OUT
--num-shards N``, ``sentences OUT --shard $i --num-shards N`` per task, then ``split OUT --num-shards N``.

A run config with a top-level ``sources:`` list (``--config FILE.yaml``) is read as ``koroberta run`` reads it
(:class:`koroberta.pipeline.PipelineConfig`: each source's resolved profile, ``decontaminate:``), with the corpus
options given on the command line on top, by every step: ``build --config FILE OUT`` and ``extract --config FILE OUT
--shard $i --num-shards N`` take no SOURCE (shard ``i`` of every source), and the steps after it build exactly what
``koroberta run FILE`` builds.

Older spellings still work for users' scripts: ``split --merge`` is ``split``; ``split --shard i`` (the kss step
before it had its own name) is refused with a pointer to ``sentences``.
"""

from __future__ import annotations

import argparse

from koroberta.errors import ConfigError


def _config(args: argparse.Namespace):
    """The corpus config of a step: ``--config``'s ``corpus:`` section (and, for a run config with ``sources:``,
    the sources as ``koroberta run`` resolves them) with the command line's corpus options on top."""
    from koroberta.corpus.config import CorpusConfig

    if _top_level_sources(args.config):
        return _sources_config(args)[0]
    return CorpusConfig.from_cli(args, args.config)


def _sources_config(args: argparse.Namespace):
    """(corpus config, run config) of ``--config`` with top-level ``sources:``, read as ``koroberta run`` reads it:
    :meth:`PipelineConfig.load` validates ``sources:``/``decontaminate:`` and fills ``corpus.sources``; the corpus
    options given on the command line then win over the file's ``corpus:`` section, as for one source."""
    from koroberta.corpus.config import CorpusConfig
    from koroberta.pipeline import PipelineConfig, resolve_run_sources

    run = PipelineConfig.load(args.config)
    cfg = CorpusConfig.from_args(args, run.corpus, source=args.config)
    cfg.sources = run.corpus.sources
    if cfg.min_chars != run.corpus.min_chars:  # the wiki profile takes corpus.min_chars: resolve it again
        cfg.sources = resolve_run_sources(run.sources, cfg.min_chars)
    return cfg, run


def _source_and_out(args: argparse.Namespace, step: str, example: str) -> bool:
    """Sort out the positionals of ``build``/``extract`` (both optional to argparse: ``--config own.yaml OUT_DIR``
    has no SOURCE); True when ``--config`` lists ``sources:`` (then SOURCE is refused: the config names them)."""
    if args.out_dir is None:  # one positional: OUT_DIR, the sources come from --config's `sources:`
        args.source, args.out_dir = None, args.source
    if _top_level_sources(args.config):
        if args.source is not None:
            raise ConfigError(f"SOURCE {args.source} given, and {args.config} lists `sources:`",
                              fix=f"koroberta corpus {step} --config {args.config} OUT_DIR (without SOURCE: "
                                  "the config's `sources:` name every source)")
        return True
    if args.source is None or args.out_dir is None:
        raise ConfigError(f"koroberta corpus {step} needs SOURCE OUT_DIR (or --config FILE.yaml with `sources:` and "
                          "OUT_DIR)", fix=f"koroberta corpus {step} {example}")
    return False


def _common(p: argparse.ArgumentParser, *, shards: str = "one", workers: bool = True,
            fields: tuple[str, ...] | None = None) -> None:
    """Options every step shares, plus the corpus config fields this step uses (``fields``; None = all), so that
    each step's --help lists only what changes its output. ``shards``: "one" (a step run per shard: --shard and
    --num-shards), "all" (a step that merges the shards: --num-shards), "none"."""
    from koroberta.corpus.config import CorpusConfig

    p.add_argument("--config", metavar="FILE.yaml", help="YAML config; its `corpus:` section is used")
    if shards == "one":
        p.add_argument("--shard", type=int, default=0, help="this shard's index, 0-based (default: 0)")
        p.add_argument("--num-shards", type=int, default=1, help="total shards (default: 1)")
    elif shards == "all":
        p.add_argument("--num-shards", type=int, default=1, help="how many shards to merge (default: 1)")
    if workers:
        p.add_argument("--workers", type=int, default=0,
                       help="worker processes (default: 0 = the CPUs this process may use: affinity mask, "
                            "SLURM_CPUS_PER_TASK); extract also decodes a .bz2 dump with this many threads. The "
                            "output is the same for any count")
    p.add_argument("--force", action="store_true", help="redo the step even if its output is complete")
    if shards != "none":  # build redoes removed intermediates by itself
        p.add_argument("--restore", action="store_true",
                       help="redo this step if its data was removed when the corpus last completed "
                            "(corpus.keep_intermediates: false): a later step that must run needs it")
    p.add_argument("--overwrite", action="store_true", help="replace an output directory holding foreign files")
    CorpusConfig.add_arguments(p, only=fields)


def _workers(args: argparse.Namespace) -> int:
    from koroberta.config import available_cpus

    if args.workers < 0:
        raise ConfigError(f"--workers {args.workers}: must be >= 0", fix="pass --workers 0 (the CPUs this process may "
                                                                          "use) or a positive count")
    return args.workers or available_cpus()


def _with_restore(cmd):
    """A step command that honours ``--restore``: inside :func:`koroberta.corpus.prune.restoring`, a step whose data
    was removed is redone instead of skipped."""
    def run(args: argparse.Namespace) -> int:
        if not getattr(args, "restore", False):
            return cmd(args)
        from koroberta.corpus.prune import restoring

        with restoring():
            return cmd(args)
    return run


def _print_done(path) -> int:
    print(path)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from koroberta.corpus.download import download_dump

    return _print_done(download_dump(args.wiki, args.date, args.out_dir, base_url=args.base_url,
                                     checksum_base_url=args.checksum_base_url, verify=not args.no_verify,
                                     retries=args.retries, multistream=args.multistream))


def cmd_extract(args: argparse.Namespace) -> int:
    from koroberta.corpus.steps import extract

    if _source_and_out(args, "extract", "dump.xml.bz2 runs/x/corpus --shard 0 --num-shards 1"):
        from koroberta.corpus.build import extract_sources

        cfg, run = _sources_config(args)
        # shard i of every source: one array task per shard, as for one source (scripts/corpus_array.slurm)
        for d in extract_sources(cfg, run.source_paths(), args.out_dir, shard=args.shard,
                                 num_shards=args.num_shards, decontaminate=run.decontaminate,
                                 workers=_workers(args), force=args.force, overwrite=args.overwrite):
            print(d)
        return 0
    return _print_done(extract(_config(args), args.source, args.out_dir, shard=args.shard,
                               num_shards=args.num_shards, workers=_workers(args), force=args.force,
                               overwrite=args.overwrite))


def cmd_clean(args: argparse.Namespace) -> int:
    from pathlib import Path

    from koroberta.corpus.steps import clean

    decontaminate: list[Path] = []
    if _top_level_sources(args.config):
        cfg, run = _sources_config(args)
        decontaminate = [Path(p) for p in run.decontaminate]  # the merge's evaluation files, as `koroberta run`
    else:
        cfg = _config(args)
    return _print_done(clean(cfg, args.out_dir, num_shards=args.num_shards, force=args.force,
                             overwrite=args.overwrite, decontaminate=decontaminate))


def cmd_sentences(args: argparse.Namespace) -> int:
    from koroberta.corpus.steps import sentences

    return _print_done(sentences(_config(args), args.out_dir, shard=args.shard, num_shards=args.num_shards,
                                 workers=_workers(args), force=args.force, overwrite=args.overwrite))


def cmd_split(args: argparse.Namespace) -> int:
    from koroberta.corpus.steps import split

    if args.shard is not None and not args.merge:
        # the old spelling of the kss step: running the train/valid/test split instead would fail on missing
        # sentence shards, or merge shards another task is still writing
        raise ConfigError(f"`koroberta corpus split --shard {args.shard}`: the per-shard sentence split is now its own "
                          "step, and `split` is the train/valid/test split that merges the shards",
                          fix=f"koroberta corpus sentences {args.out_dir} --shard {args.shard} "
                              f"--num-shards {args.num_shards}")
    return _print_done(split(_config(args), args.out_dir, num_shards=args.num_shards, force=args.force,
                             overwrite=args.overwrite))


def _top_level_sources(config) -> bool:
    from koroberta.config import load_yaml

    return bool(config) and isinstance(data := load_yaml(config), dict) and bool(data.get("sources"))


def cmd_build(args: argparse.Namespace) -> int:
    from koroberta.corpus.build import build_corpus, build_corpus_sources

    if _source_and_out(args, "build", "dump.xml.bz2 runs/x/corpus"):
        cfg, run = _sources_config(args)
        return _print_done(build_corpus_sources(cfg, run.source_paths(), args.out_dir,
                                                decontaminate=run.decontaminate, workers=_workers(args),
                                                force=args.force, overwrite=args.overwrite))
    return _print_done(build_corpus(_config(args), args.source, args.out_dir, workers=_workers(args),
                                    force=args.force, overwrite=args.overwrite))


def cmd_backends(args: argparse.Namespace) -> int:
    from koroberta.corpus.bench import compare_backends

    compare_backends(args.text, args.backends, max_chars=args.max_chars)
    return 0


def register(subparsers) -> None:
    from koroberta.corpus.config import CLEAN_FIELDS, EXTRACT_FIELDS, SENTENCE_FIELDS, SPLIT_FIELDS
    from koroberta.corpus.download import DEFAULT_BASE_URL

    p = subparsers.add_parser("corpus", help="kowiki dump -> clean, sentence-split train/valid/test text",
                              description="Corpus stage: download, extract, clean, sentence split, train/valid/test.")
    sub = p.add_subparsers(dest="corpus_command", metavar="STEP", required=True)

    d = sub.add_parser("download", help="fetch <wiki>-<date>-pages-articles.xml.bz2 (resumes, verifies SHA-1)",
                       description="Download a dated pages-articles dump (HTTP Range resume, retries with backoff), "
                                   "verify its SHA-1, record it in <file>.json, and print the file's path (put it in "
                                   "the config's `source:`).")
    d.add_argument("out_dir", metavar="OUT_DIR", help="directory to download into")
    d.add_argument("--wiki", default="kowiki", help="wiki database name (default: kowiki)")
    d.add_argument("--date", default="latest",
                   help="dump date YYYYMMDD, or 'latest' = the newest finished dump, resolved to its date "
                        "(default: latest)")
    d.add_argument("--base-url", default=DEFAULT_BASE_URL,
                   help=f"dump server or mirror with the same layout (default: {DEFAULT_BASE_URL})")
    d.add_argument("--checksum-base-url", default=DEFAULT_BASE_URL,
                   help="where to get the SHA-1 when --base-url publishes none; without one the download is "
                        f"refused (default: {DEFAULT_BASE_URL})")
    d.add_argument("--retries", type=int, default=5,
                   help="retries per request on connection errors and 429/5xx, with exponential backoff (default: 5)")
    d.add_argument("--no-verify", action="store_true",
                   help="accept the file without a published SHA-1 (logged as a warning; not recommended)")
    d.add_argument("--multistream", action="store_true",
                   help="fetch <wiki>-<date>-pages-articles-multistream.xml.bz2 and its -index.txt.bz2 instead: the "
                        "same pages, in bz2 streams that each extract shard of a SLURM array decodes apart (one "
                        "process reads it like the plain dump); prints the dump's path")
    d.set_defaults(func=cmd_download)

    e = sub.add_parser("extract", help="dump/WikiExtractor/text -> cleaned documents (docs.jsonl), per shard",
                       description="Extract the pages with ordinal % NUM_SHARDS == SHARD of SOURCE into "
                                   "extract[-i-of-n]/, or of every source of the top-level `sources:` list of "
                                   "--config FILE.yaml (then give OUT_DIR only) into extract-<name>[-i-of-n]/. A "
                                   "multistream dump with its index next to it (X.xml.bz2 and X-index.txt.bz2, as "
                                   "`corpus download --multistream` fetches them) is read by streams instead: shard "
                                   "i decodes only the i-th run of them.")
    # both optional to argparse, as for build: `extract --config owndata.yaml OUT_DIR --shard i` has no SOURCE
    e.add_argument("source", metavar="SOURCE", nargs="?",
                   help=".xml.bz2/.xml dump, WikiExtractor output (dir or file, .xz ok), text file, or a Hugging Face "
                        "dataset on disk (save_to_disk dir; .parquet/.jsonl file or dir) with a `text` column; left "
                        "out when --config lists `sources:`")
    e.add_argument("out_dir", metavar="OUT_DIR", nargs="?",
                   help="corpus output directory (extract[-i-of-n]/ is written inside)")
    _common(e, fields=EXTRACT_FIELDS)
    e.set_defaults(func=_with_restore(cmd_extract))

    c = sub.add_parser("clean", help="merge extract shards in page order, drop exact duplicates")
    c.add_argument("out_dir", metavar="OUT_DIR", help="corpus output directory holding the extract shard(s)")
    _common(c, shards="all", workers=False, fields=CLEAN_FIELDS)
    c.set_defaults(func=_with_restore(cmd_clean))

    s = sub.add_parser("sentences", help="kss sentence split of clean/docs.jsonl, per shard",
                       description="Split every document of clean/ into sentences with kss (the documents that "
                                   "start in the SHARD-th of NUM_SHARDS byte ranges of clean/docs.jsonl); writes "
                                   "sentences[-i-of-n]/.")
    s.add_argument("out_dir", metavar="OUT_DIR", help="corpus output directory holding clean/")
    _common(s, fields=SENTENCE_FIELDS)
    s.set_defaults(func=_with_restore(cmd_sentences))

    m = sub.add_parser("split", help="merge the sentence shards into split/{train,valid,test}.txt (+ hf/*.parquet)",
                       description="Merge the sentence shards in document order and split the documents into "
                                   "train/valid/test (by a hash of the page id).")
    m.add_argument("out_dir", metavar="OUT_DIR", help="corpus output directory holding the sentences shard(s)")
    m.add_argument("--merge", action="store_true", help=argparse.SUPPRESS)  # old spelling: `split --merge` = split
    m.add_argument("--shard", type=int, help=argparse.SUPPRESS)  # old spelling of `sentences`: refused with a fix
    # backend: the split's identity records it (steps.split), so `split --config` must take the same YAML value
    _common(m, shards="all", workers=False, fields=SENTENCE_FIELDS + SPLIT_FIELDS + ("keep_intermediates",))
    m.set_defaults(func=_with_restore(cmd_split))

    b = sub.add_parser("build", help="all steps on one machine (what `koroberta run` does)",
                       description="Build a corpus from SOURCE, or from the top-level `sources:` list of --config "
                                   "FILE.yaml (then give OUT_DIR only): extract, clean, sentence split, "
                                   "train/valid/test.")
    # both optional to argparse: `build --config owndata.yaml OUT_DIR` has no SOURCE (cmd_build sorts them out)
    b.add_argument("source", metavar="SOURCE", nargs="?",
                   help=".xml.bz2/.xml dump, WikiExtractor output (dir or file), text file, NSMC-style TSV, or a "
                        "Hugging Face dataset on disk (save_to_disk dir; .parquet/.jsonl file or dir) with a `text` "
                        "column; left out when --config lists `sources:`")
    b.add_argument("out_dir", metavar="OUT_DIR", nargs="?",
                   help="corpus output directory; split/ holds the result ({train,valid,test}.txt, and hf/*.parquet "
                        "for datasets)")
    _common(b, shards="none")
    b.set_defaults(func=cmd_build)

    k = sub.add_parser("backends", help="measure kss backends on text: sentences/s per core and agreement")
    k.add_argument("text", metavar="TEXT", help="text file, one paragraph or sentence per line (e.g. split/train.txt)")
    k.add_argument("--backends", nargs="+", default=["punct", "fast", "pecab", "mecab"])
    k.add_argument("--max-chars", type=int, default=200_000,
                   help="characters of text to split, from the start of TEXT: the file is read up to the line that "
                        "completes them, never whole (default: 200000)")
    k.set_defaults(func=cmd_backends)
