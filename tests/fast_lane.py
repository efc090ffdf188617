"""The fast lane (`pytest -m "not slow"`): which parametrizations it leaves to the full suite, and
a check that what stays still reaches every compiler module.

What leaves the fast lane, in the order it is decided:

1. Tests that are slow whatever their parameters carry `@pytest.mark.slow` in their file.
2. SLOW below marks single tests slow by node id, each with the reason and what keeps its code
   path in the fast lane; REPRESENTATIVES names, for a parametrized test, the members a person
   chose to keep in the fast lane (the others are slow).
3. Every other sweep (a parametrized test) is sampled by tests/sweep_sampling.py: a test with more
   than SWEEP_KEEP (1) member not already slow keeps 1 of them in the fast lane, chosen by a hash
   of each member's id (the same in every process, and adding a case moves at most one other);
   the rest are marked slow with the reason "sampled: 1 of N members ...".  Its EXEMPT table
   leaves alone sweeps whose members are each a behaviour of their own (every limit, every pass's
   golden, ...), and PER_GROUP keeps one member per group (one sample per op, one model per pass,
   one case per diagnostics file).  So every test function keeps at least one member in the lane:
   every behaviour is still exercised there, only the data it sweeps is sampled.

Marking only adds `slow` markers, the same whichever `-m` is given: `-m slow` and `-m "not slow"`
together are exactly the full suite (`bash scripts/test.sh`, CI), which runs every member.  Node
ids are exact; a table entry that names no collected test is an error (a renamed test must not
silently drop out of the fast lane or back into it).

A run over whole folders (plain `pytest`, `pytest -m "not slow"`) uses two pytest-xdist workers
when xdist is installed and no `-n` was given: `DLC_TEST_WORKERS=N` chooses another count (0: in
this process).  Runs of named files or tests stay in one process, where they start fastest.

`--fast-lane-coverage` (scripts/fast.sh passes it) fails the run unless every `tests/test_*.py`
module has a test in it, every `compiler/**/*.py` module was imported by some test process and
every `specs/*.dl` file was read by one.  Under
pytest-xdist each worker reports what it saw and the controller checks the union.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.sweep_sampling import EXEMPT, PER_GROUP, sampled_out
from tests.worker_schedule import freeze_collected_heap, order_for_workers

ROOT = Path(__file__).resolve().parent.parent

# node id -> why it is slow.  Each names what keeps its code path in the fast lane.
SLOW: dict[str, str] = {
    # Session 8's trim of the fast lane (each 0.4-2.3 s of a worker's time, measured with --durations):
    "tests/test_inference_build.py::test_o2_resnet_loads_torchvision_and_matches_it_after_optimizing":
        "torchvision's ResNet-18 checkpoint into an -O2 build that is then optimized (1.7 s); the fast lane loads "
        "torchvision checkpoints through test_parity_vision and compares resnet18's optimized build with -O0 "
        "through test_optimized_model_computes_what_o0_computes[resnet18]",
    "tests/test_fused_epilogues.py::test_nothing_is_fused_without_example_inputs_or_when_asked_for_plain":
        "two optimizations of resnet18 (2.3 s); the fast lane optimizes with fused kernels chosen by measurement "
        "(test_fused_layers_fall_back_at_call_time) and with the kernels missing "
        "(test_without_fused_kernels_nothing_is_fused)",
    "tests/test_runtime_module.py::test_a_runtime_no_module_uses_goes_with_the_compile_that_makes_them_standalone":
        "seven compiles of resnet.dl and gpt2.dl through the CLI (1.3 s); "
        "test_check_finds_the_runtime_stale_and_refuses_a_hand_written_one keeps the runtime module's transaction "
        "in the fast lane",
    "tests/test_inference_build.py::test_generated_o2_code_is_lint_clean":
        "every spec compiled at -O2 and linted (1 s); test_cli's test_generated_code_is_self_contained_and_lint_clean "
        "lints generated code in the fast lane, and test_opt_levels compiles every spec's models at -O2 there",
    "tests/test_parity_t5.py::test_a_few_optimizer_steps_lower_the_loss":
        "AdamW steps on T5 (0.7 s); test_opt_levels' test_gradients_agree_in_training[T5ForConditionalGeneration] "
        "keeps T5's gradients in the fast lane",
    "tests/test_hardening.py::test_a_1500_import_chain_is_dlc013_not_a_recursion_error":
        "writes and checks 1,500 chained files (1.5 s); test_limits' test_a_limit_holds_exactly[max_import_depth] "
        "keeps the import-depth limit at its boundary in the fast lane",
    **{f"tests/test_check_scaling.py::test_four_times_the_nodes_cost_about_four_times_the_work[{shape}]":
       "[instances] keeps the scaling benchmark's spec generator and counter in the fast lane; the layer chain "
       "and the distinct configurations (0.4 s each) run in the full suite" for shape in ("layers", "configs")},
    "tests/test_inference_build.py::test_optimized_model_computes_what_o0_computes[vgg11_bn]":
        "VGG's full-size classifier (120M weights) is folded, packed and measured: over a minute; "
        "resnet18 keeps conv/BN folding fast",
    "tests/test_inference_build.py::test_optimized_model_computes_what_o0_computes[mobilenet_v2]":
        "resnet18 keeps conv/BN folding and channels-last in the fast lane",
    "tests/test_inference_build.py::test_each_packed_kernel_computes_what_o0_computes[resnet18-onednn]":
        "bert, gpt2 and t5 keep both packed kernels in the fast lane",
    "tests/test_inference_build.py::test_each_packed_kernel_computes_what_o0_computes[resnet18-mkl]":
        "bert, gpt2 and t5 keep both packed kernels in the fast lane",
    "tests/test_inference_build.py::test_channels_last_is_measured_with_example_inputs":
        "times every convolution both ways; test_channels_last_weights_and_idempotence stays fast",
    "tests/test_inference_build.py::test_torch_export[resnet18-0]": "bert keeps torch.export in the fast lane",
    "tests/test_inference_build.py::test_torch_export[resnet18-2]": "bert keeps torch.export in the fast lane",
    "tests/test_inference_build.py::test_torch_export[bert-2]":
        "torch.export of the optimized BERT (3.8 s, the slowest test left in the lane); the fast lane exports "
        "the committed BERT through test_hf_interface's test_torch_export_takes_the_named_result, and checks "
        "the optimized BERT against -O0 through test_optimized_model_computes_what_o0_computes[bert]",
    "tests/test_check_workers.py::test_the_command_reports_the_same_with_one_process_or_several[text]":
        "two CLI processes (1.4 s); the fast lane compares every answer checked in forked workers with the "
        "spec checked alone, in process, through the other tests of test_check_workers.py",
    "tests/test_fast_parser.py::test_mutants_agree_with_lark[25]":
        "a mutant campaign (1.4 s); the fast lane compares the fast parser with lark on every repository file "
        "and on random operator expressions and their mutants (tests/test_fast_parser_operators.py)",
    "tests/test_fuzz.py::test_the_token_mutator_keeps_close_to_the_language":
        "a statistic of the fuzzing campaign's own mutator (0.6 s), not of dlc; the fast lane's token-mutant "
        "tests still run mutants through the compiler",
    "tests/test_inference_build.py::test_torch_export[bert-0]":
        "[bert-2] keeps torch.export of the optimized build in the fast lane, and test_hf_interface's "
        "test_torch_export_takes_the_named_result exports the committed BERT there",
    "tests/test_parity_vision.py::test_outputs_match_torchvision[vgg16-input_shape4]":
        "VGG's full-size classifier again (vgg11_bn runs in the full suite too)",
    "tests/test_init.py::test_cnns_initialize_like_torchvision[vgg.dl-VGG11BN-vgg11_bn-skip1]":
        "VGG's 120M-weight classifier initialized twice (30-40 s on a busy worker); mobilenet_v2 "
        "keeps CNN init against torchvision in the fast lane",
    "tests/test_fused_epilogues.py::test_fused_convolutions_compute_what_o0_computes[vgg11_bn]":
        "VGG's full-size classifier again; mobilenet_v2 keeps the fused convolutions fast",
    "tests/test_parameterized.py::test_runtime_configuration_matches_dash_d_compile[VGG-3]":
        "VGG's full-size classifier again; ResNet, ResNet50 and MobileNetV2 keep CNN parameters in the fast lane",
    "tests/test_parity_vision.py::test_outputs_match_torchvision[vgg11_bn-input_shape3]":
        "VGG's full-size classifier again; resnet18 and mobilenet_v2 keep torchvision parity in the "
        "fast lane, and test_parameters_match_torchvision keeps every VGG depth's parameters there",
    **{f"tests/test_parity_vision.py::test_parameters_match_torchvision[{name}]":
       "ResNet-101 and -152 are ResNet-50's bottleneck blocks in longer stacks (0.6-1.6 s to build); resnet18, "
       "resnet34 and resnet50 keep every block kind's names and shapes against torchvision in the fast lane"
       for name in ("resnet101", "resnet152")},
    "tests/test_runtime_helpers.py::test_check_gives_the_same_verdict_from_a_copy_of_the_project[all]":
        "compiles every spec; [bert-resnet] keeps the copied project's paths in the fast lane",
    **{f"tests/test_passes.py::test_every_pass_preserves_numerics[transformer-{name}]":
       "alone, this pass leaves the small transformer's code as -O0 writes it (checked when this entry was "
       "written); tiny and identities keep it alone in the fast lane, and every transformer case there also "
       "runs the whole -O2 pipeline"
       for name in ("remove-identities", "cancel-transposes", "collapse-reshapes", "fold-scales", "cse",
                    "dead-code", "fuse-epilogues")},
    # Subprocesses that start a Python (1-4 s each); the property stays in the fast lane through another.
    "tests/test_runtime_helpers.py::test_compiler_imports_without_torch":
        "test_cli's test_the_compiler_never_imports_torch checks and compiles (-O2) in a process without torch, "
        "and test_layering checks every compiler module's imports statically",
    "tests/test_summary.py::test_summary_and_graph_need_no_torch":
        "test_cli's test_the_compiler_never_imports_torch keeps a torch-free CLI process in the fast lane; "
        "test_layering checks the imports of the summary and graph modules statically",
    "tests/test_cli.py::test_output_does_not_depend_on_hash_seed":
        "two CLI processes under two hash seeds; test_compiling_twice_is_byte_identical keeps determinism in the fast lane",
    "tests/test_runtime_module.py::test_generated_modules_import_from_a_plain_folder_on_sys_path":
        "a process importing torch; test_golden's test_generated_modules_import_without_dlc keeps importing the "
        "generated modules afresh with their dlc_runtime (and the compiler and dlc refused) in the fast lane",
    "tests/test_golden.py::test_generated_modules_import_without_dlc_in_a_fresh_process":
        "a process importing torch and every generated module (2-4 s); test_generated_modules_import_without_dlc "
        "imports them afresh in the test process with the compiler and dlc hidden and refused, in the fast lane",
    "tests/test_parameterized.py::test_full_size_entry_points_build_with_parameters":
        "builds full-size ResNet50, BERT and GPT-2 layers (3 s); test_runtime_configuration_matches_dash_d_compile "
        "builds the same entry points with constructor arguments in the fast lane",
    "tests/test_parity_vision.py::test_training_steps_lower_the_loss":
        "a compile of resnet.dl and five SGD steps of a full-width ResNet-18; test_opt_levels' "
        "test_gradients_agree_in_training[ResNet18] keeps ResNet's backward in the fast lane, and ViT's, Llama's "
        "and T5's training tests keep an optimizer loop that lowers the loss there",
    "tests/test_parser.py::test_printed_modules_parse_back_to_the_same_tree":
        "100 generated whole modules (8 s); test_printed_expressions_parse_back_to_the_same_tree and the "
        "formatter's round trips keep the printer in the fast lane",
    "tests/test_training_gradients.py::test_training_build_gradients_equal_the_reference[gpt2-dropout-compiled]":
        "bert-dropout-compiled keeps the runtime's dropout_attention against the reference's SDPA in the fast lane",
    "tests/test_training_gradients.py::test_training_build_gradients_equal_the_reference[gpt2-dropout-onednn]":
        "bert-dropout-compiled keeps the runtime's dropout_attention against the reference's SDPA, and gpt2-onednn "
        "the oneDNN training GEMMs, in the fast lane",
    # Session 6 (the fast lane under 60 s): full-width CNNs that a cheaper case of the same behaviour
    # keeps in the fast lane (2-6 s each on a busy worker).
    "tests/test_fused_epilogues.py::test_fused_convolutions_compute_what_o0_computes[resnet18]":
        "a full-width ResNet-18 fused, packed and measured (6 s); [mobilenet_v2] keeps the fused convolutions "
        "(residual sums included) against -O0 in the fast lane, and test_o2_resnet_lists_its_chains_and_o1_none "
        "keeps ResNet's chains there",
    "tests/test_passes.py::test_inplace_ops_change_nothing_in_eval_or_training[resnet-ResNet-overrides0-shape0]":
        "[mobilenet-MobileNetV2-...] keeps in-place activations beside residual sums, in eval and training, fast",
    "tests/test_parity_alexnet.py::test_outputs_match[224]":
        "AlexNet at full resolution (2-3 s); [64] keeps its numerics against torchvision, the adaptive pooling "
        "included, in the fast lane",
    "tests/test_parameterized.py::test_runtime_configuration_matches_dash_d_compile[ResNet50-1]":
        "a full-size ResNet-50 built twice (1.7 s); [ResNet-2] keeps ResNet's constructor arguments against "
        "-D in the fast lane",
    "tests/test_parameterized.py::test_every_resnet50_block_is_a_bottleneck":
        "builds a full-size ResNet-50 (1.5 s); test_parity_vision's test_parameters_match_torchvision[resnet50] "
        "keeps every bottleneck block's names and shapes against torchvision in the fast lane",
    **{f"tests/test_parity_vit.py::test_full_size_parameters_and_keys[{name}]":
       "full-size ViT-L/16 and ViT-B/32 (0.5-1 s each); [vit_b_16] keeps the full-size names and shapes against "
       "torchvision in the fast lane, test_small_outputs_match the numerics"
       for name in ("vit_l_16", "vit_b_32")},
    "tests/test_fused_epilogues.py::test_measured_epilogues_are_reported_and_kept_only_when_faster":
        "times every ResNet-18 convolution fused and plain (2.5 s of CPU); test_kernel_choice keeps the interleaved "
        "timing and its fastest-call rule in the fast lane, test_inference_build's test_measured_choices_are_reported "
        "the report of measured choices, and [mobilenet_v2] of test_fused_convolutions_compute_what_o0_computes the "
        "fused convolutions' numerics",
    "tests/test_whole_model_check.py::test_chosen_layers_are_undone_when_the_whole_model_is_slower_with_them[gpt2]":
        "[bert] keeps the undo of the chosen layers (timing faked, so it does not depend on the machine) fast",
    **{f"tests/test_editor_grammars.py::test_tree_sitter_grammar_accepts_small_specs[{name}]":
       "the Earley parse of the tree-sitter rules is slow on longer files (1-2 s); attention.dl "
       "keeps it in the fast lane, and test_tree_sitter_grammar_accepts_every_spec runs in the full suite"
       for name in ("layers.dl", "transformer.dl")},
}

# test (node id without parameters) -> (parametrization ids kept in the fast lane, why the rest are slow)
_BERT_GPT2_PAIRS = ("full-size BERT-base and GPT-2 small (110-124M weights, 4-7 s a test); every model at the "
                    "sizes of tests/small_configs.py keeps names, ties, masks and numerics against HF in the fast lane")
_SMALL_PAIRS = ["BertModel-small", "BertForMaskedLM-small", "BertForSequenceClassification-small", "GPT2Model-small",
                "GPT2LMHeadModel-small"]
_OPT_LEVELS = ("one or two models per spec stay in the fast lane; the full sweep over every model of specs/ "
               "(VGG's 120M-weight classifier, the extra ResNet/MobileNet variants, base models whose heads "
               "are kept) runs in the full suite")
_OPT_LEVELS_CNNS = ("; AlexNet (61M weights, 58M of them in its classifier: 2-4 s a level) keeps its spec and its "
                    "numerics against torchvision in test_parity_alexnet's fast tests; VGG11BN (VGG's 120M-weight "
                    "classifier: 3-4 s) is made of the layers ResNet50, MobileNetV2 and GoogLeNet keep at -O2 there, "
                    "and VGG's parameters against torchvision (every depth) and its compile stay fast")
_OPT_LEVELS_GRADIENTS = (_OPT_LEVELS + _OPT_LEVELS_CNNS + "; in training, ResNet18 and MobileNetV2 keep plain, strided, "
                         "grouped and 1x1 convolutions with batch norms (GoogLeNet's backward, 0.8 s, adds only the "
                         "concatenation of its branches, which its forward against torchvision keeps); MobileNetV2's "
                         "backward (3-4 s) runs in the full suite, ResNet18's keeps convolutions and batch norms in "
                         "training fast")
_OPT_LEVELS_CNN_EVAL = ("; at -O2 in eval, ResNet18 keeps folded convolutions and batch norms in the fast lane, "
                        "MobileNetV2 keeps its depthwise and inverted residual blocks there through "
                        "test_inference_build_agrees_in_eval and test_fused_epilogues, GoogLeNet its concatenations "
                        "through test_parity_googlenet; ResNet50, MobileNetV2 and GoogLeNet (2-2.5 s each) run here "
                        "in the full suite")
_OPT_LEVELS_ALEXNET = (_OPT_LEVELS + _OPT_LEVELS_CNNS)
REPRESENTATIVES: dict[str, tuple[frozenset[str], str]] = {
    "tests/test_parity_vision.py::test_outputs_match_torchvision": (frozenset([
        "resnet18-input_shape0", "mobilenet_v2-input_shape2"]),
        "resnet18 (basic blocks) and mobilenet_v2 (depthwise convolutions, inverted residuals) keep torchvision "
        "parity in the fast lane; ResNet-50 (0.9 s) adds bottleneck blocks, whose names and shapes "
        "test_parameters_match_torchvision[resnet50] keeps there"),
    "tests/test_training_gradients.py::test_training_build_gradients_equal_the_reference": (frozenset([
        "bert-dropout-compiled", "gpt2-onednn"]),
        "bert-dropout-compiled keeps the training build's gradients against HF's, through the runtime's "
        "dropout_attention, and gpt2-onednn those of optimize_for_training's oneDNN GEMMs, in the fast lane; the "
        "other models and bert without dropout run in the full suite"),
    **{f"tests/test_parity_bert_gpt2.py::{test}": (frozenset(ids), _BERT_GPT2_PAIRS) for test, ids in [
        ("test_parameter_count_and_every_shape_match_the_reference", _SMALL_PAIRS),
        ("test_reference_checkpoint_loads_strictly_and_every_tensor_lands", _SMALL_PAIRS),
        ("test_loading_keeps_weights_tied", ["BertForMaskedLM-small", "GPT2LMHeadModel-small"]),
        ("test_outputs_match_the_reference", [f"{pair}-{padded}" for pair in _SMALL_PAIRS
                                              for padded in ("padded", "plain")]),
        ("test_fused_attention_build_matches_the_reference", ["BertForMaskedLM-small", "GPT2LMHeadModel-small"]),
    ]},
    "tests/test_opt_levels.py::test_o0_and_o2_agree": (frozenset([
        "transformer", "BertForMaskedLM", "GPT2LMHeadModel",
        "T5ForConditionalGeneration", "T5V11ForConditionalGeneration", "ResNet18",
        "LlamaForCausalLM", "VisionTransformer", "BahdanauSeq2Seq"]), _OPT_LEVELS_ALEXNET + _OPT_LEVELS_CNN_EVAL),
    "tests/test_opt_levels.py::test_gradients_agree_in_training": (frozenset([
        "transformer", "BertForMaskedLM", "GPT2LMHeadModel", "T5ForConditionalGeneration",
        "T5V11ForConditionalGeneration", "ResNet18", "LlamaForCausalLM", "VisionTransformer",
        "BahdanauSeq2Seq"]), _OPT_LEVELS_GRADIENTS),
    "tests/test_opt_levels.py::test_inference_build_agrees_in_eval": (frozenset([
        "transformer", "BertForSequenceClassification", "GPT2LMHeadModel", "MobileNetV2", "LlamaForCausalLM",
        "VisionTransformer"]),
        "T5's inference build (2 s, two compiles of t5.dl) is compared with -O0 in the fast lane by "
        "test_inference_build's test_optimized_model_computes_what_o0_computes[t5]"),
    "tests/test_check_cache.py::test_dims_equal_agrees_with_simplify": (frozenset([
        "B*S + B + S + 1", "(H + 1)//2 - 1"]),
        "each expression is compared with all the others (the constant and the product among them) through "
        "sympy.simplify (0.3-1 s each); a sum of products and a floor stay in the fast lane"),
    "tests/test_ci_output.py::test_a_closed_pipe_still_exits_1_when_errors_were_found": (frozenset(["text"]),
        "one CLI process per format; every format writes through the same closed-pipe handling, which text keeps "
        "in the fast lane"),
    "tests/test_init.py::test_same_seed_same_weights_at_every_level": (frozenset([
        "transformer.dl-Transformer-overrides0", "bert.dl-BertModel-overrides1"]),
        "each compiles its spec at three levels; transformer and bert keep fused q/k/v initialized in order in the "
        "fast lane, llama and t5 (1.5-3 s) run in the full suite"),
    "tests/test_hf_interface.py::test_int_and_float_masks_equal_bool_masks_and_hf": (frozenset([
        "bert-0", "bert-1", "bert-2", "gpt2-0", "gpt2-1", "gpt2-2", "t5-2"]),
        "bert and gpt2 keep every level in the fast lane, t5 its -O2 (SDPA with a position bias); t5's other two "
        "levels (a compile of t5 each) run in the full suite"),
    "tests/test_parity_mobilenet_width.py::test_parameters_and_keys": (frozenset(["0.5", "1.4"]),
        "a compile of mobilenet.dl per width; 0.5 and 1.4 keep channel counts rounded below and above width 1 "
        "in the fast lane"),
    "tests/test_parity_llama.py::test_a_class_compiled_with_as_many_kv_heads_as_heads_builds_grouped_query_attention":
        (frozenset(["2"]), "grouped-query attention (2 key/value heads) stays in the fast lane; multi-query (1) "
                           "takes the same repeat"),
    "tests/test_generation.py::test_beam_search_ids_equal_hf_for_gpt2": (frozenset([
        "None-1.0-0", "7-1.0-1", "23-0.0-2", "5-2.0-0"]),
        "one prompt per end token and length penalty keeps each of them against HF's beam search in the fast "
        "lane (0.2-0.3 s a case); every prompt with every setting runs in the full suite"),
    "tests/test_generation.py::test_greedy_ids_equal_hf_for_gpt2": (frozenset(["None-0", "7-1", "23-2"]),
        "one prompt per end token keeps each against HF's greedy search in the fast lane; every pairing runs in "
        "the full suite"),
    "tests/test_mutation_locations.py::test_errors_follow_from_the_changed_line": (frozenset([
        "alexnet", "bert", "gpt1", "gpt2", "llama", "seq2seq", "t5", "tagger", "transformer", "vit"]),
        "a CNN (alexnet), every language model, the recurrent specs and ViT keep mutated lines' diagnostics in the "
        "fast lane; googlenet, mobilenet, resnet, vgg and word2vec (0.4-1 s each, longer files of the same "
        "constructs) run in the full suite"),
    "tests/test_summary.py::test_counts_match_the_generated_model": (frozenset([
        "BertForMaskedLM", "ResNet18", "Transformer"]),
        "a language model, a CNN and the encoder-decoder keep the summary's counts against the built model in the "
        "fast lane; T5 and the recurrent Tagger (0.6-1.3 s) run in the full suite"),
}


@pytest.hookimpl(tryfirst=True)          # before xdist's own hook turns -n into workers
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Default to DLC_TEST_WORKERS (2) xdist workers for runs over whole folders."""
    if (not config.pluginmanager.hasplugin("xdist") or "PYTEST_XDIST_WORKER" in os.environ
            or getattr(config.option, "numprocesses", None) is not None or config.option.usepdb
            or config.option.collectonly or not all(Path(arg).is_dir() for arg in config.args)):
        return
    workers = int(os.environ.get("DLC_TEST_WORKERS", "2"))
    if workers > 1 and (os.cpu_count() or 1) > 1:
        config.option.numprocesses = workers
        if config.option.dist == "no":
            # Each worker starts with a contiguous half of the suite and steals from the other's
            # queue when its own runs out: a module's tests mostly stay on one worker, so its
            # module-scoped fixtures (reference models, compiled specs) and the imports they need
            # are built once, where `load` spread them over both.
            config.option.dist = "worksteal"


def _base(nodeid: str) -> str:
    return nodeid.split("[", 1)[0]


@pytest.hookimpl(tryfirst=True)          # before -m deselects: the markers must be on by then
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tables' tests slow; fail on entries that name no collected test.  In an xdist
    worker, order the items for the workers (tests/worker_schedule.py)."""
    order_for_workers(items)
    collected = {item.nodeid for item in items}
    for item in items:
        why = SLOW.get(item.nodeid)
        kept = REPRESENTATIVES.get(_base(item.nodeid))
        if why is None and kept is not None and getattr(item, "callspec", None) is not None \
                and item.callspec.id not in kept[0]:
            why = kept[1]
        if why is not None:
            item.add_marker(pytest.mark.slow(reason=why))
    sampled = sampled_out(items, _base, lambda item: item.get_closest_marker("slow") is not None, REPRESENTATIVES,
                          config.args)
    for item, why in sampled.items():
        item.add_marker(pytest.mark.slow(reason=why))
    if any("::" in str(arg) for arg in config.args):
        return                                   # single tests asked for: the tables are not all in view
    bases = {_base(nodeid) for nodeid in collected}
    stale = [nodeid for nodeid in SLOW if _base(nodeid) in bases and nodeid not in collected]
    stale += [f"{base}[{param}]" for base, (kept, _) in REPRESENTATIVES.items() if base in bases
              for param in kept if f"{base}[{param}]" not in collected]
    files = {nodeid.split("::", 1)[0] for nodeid in collected}
    stale += [base for base in (*EXEMPT, *PER_GROUP) if base.split("::", 1)[0] in files and base not in bases]
    if stale:
        raise pytest.UsageError("tests/fast_lane.py names tests that do not exist (renamed?):\n  "
                                + "\n  ".join(stale))


# ---------------------------------------------------------------------------------- coverage
def pytest_collection_finish(session: pytest.Session) -> None:
    """With --fast-lane-coverage over whole folders: note every test module in them that has no
    test selected (the fast lane covers every module: a file whose tests all went slow needs a
    cheap one kept); sessionfinish fails the run on them.  Runs where the tests are collected: in
    each xdist worker (which reports to the controller), or in-process."""
    freeze_collected_heap()                           # in an xdist worker (tests/worker_schedule.py)
    config = session.config
    seen = getattr(config, "_dlc_seen", None)
    folders = [Path(arg).resolve() for arg in config.args]
    if seen is None or not session.items or not folders or not all(folder.is_dir() for folder in folders):
        return                                       # not asked for, or files or single tests asked for
    modules = {p for folder in folders for p in folder.rglob("test_*.py")}
    selected = {Path(str(item.path)).resolve() for item in session.items}
    seen[2].update(str(p.relative_to(ROOT)) for p in modules - selected)


def add_options(parser: pytest.Parser) -> None:
    """The fast lane's command-line option (tests/conftest.py's pytest_addoption calls this)."""
    parser.addoption("--fast-lane-coverage", action="store_true",
                     help="fail unless every compiler module was imported and every spec read by the tests run")


def _wanted() -> tuple[set[str], set[str]]:
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for p in (ROOT / "compiler").rglob("*.py")}
    specs = {p.name for p in (ROOT / "specs").glob("*.dl")}
    return modules, specs


_specs_read: set[str] = set()


def _record_spec_reads(event: str, args: tuple) -> None:
    if event == "open" and isinstance(args[0], (str, Path)) and str(args[0]).endswith(".dl"):
        path = Path(args[0])
        if path.parent.name == "specs":
            _specs_read.add(path.name)


# ---------------------------------------------------------------------- property tests
# A sixth: the property tests were 15 s of the fast lane's ~260 s of test time at a third (session 6).
FAST_LANE_EXAMPLES = 1 / 6


def in_fast_lane() -> bool:
    """Whether this run deselects the slow tests (`-m "not slow"`), set before test modules load."""
    return os.environ.get("DLC_FAST_LANE") == "1"


def examples(full: int) -> int:
    """A property test's hypothesis examples: `full` in the full suite, a sixth of them (at least 10)
    in the fast lane.  Every run still draws new examples, so the fast lane samples the same space."""
    return max(10, round(full * FAST_LANE_EXAMPLES)) if in_fast_lane() else full


def pytest_configure(config: pytest.Config) -> None:
    # xdist workers run this too, before they import test modules: `examples()` reads it there
    os.environ["DLC_FAST_LANE"] = "1" if (config.option.markexpr or "").strip() == "not slow" else "0"
    if config.getoption("--fast-lane-coverage"):
        config._dlc_seen = (set(), set(), set())       # type: ignore[attr-defined]  (modules, specs, empty tests)
        sys.addaudithook(_record_spec_reads)                    # audit hooks cannot be removed: only when asked


def _seen_here() -> tuple[list[str], list[str]]:
    return sorted(m for m in sys.modules if m == "compiler" or m.startswith("compiler.")), sorted(_specs_read)


@pytest.hookimpl(optionalhook=True)                             # an xdist hook: absent without xdist
def pytest_testnodedown(node, error) -> None:                    # xdist controller: a worker finished
    seen = getattr(node.config, "_dlc_seen", None)
    output = getattr(node, "workeroutput", {})
    if seen is not None and "dlc_modules" in output:
        seen[0].update(output["dlc_modules"])
        seen[1].update(output["dlc_specs"])
        seen[2].update(output["dlc_empty_test_modules"])


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    seen = getattr(config, "_dlc_seen", None)
    if seen is None:
        return
    modules, specs = _seen_here()
    if hasattr(config, "workeroutput"):                          # an xdist worker: the controller checks
        config.workeroutput["dlc_modules"], config.workeroutput["dlc_specs"] = modules, specs
        config.workeroutput["dlc_empty_test_modules"] = sorted(seen[2])
        return
    seen[0].update(modules)
    seen[1].update(specs)
    wanted_modules, wanted_specs = _wanted()
    missing = sorted(wanted_modules - seen[0]) + sorted(f"specs/{s}" for s in wanted_specs - seen[1])
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if seen[2]:
        if reporter is not None:
            reporter.write_line("fast-lane coverage: these test modules have no test in this run (keep a cheap one "
                                "out of the slow lane): " + ", ".join(sorted(seen[2])), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if missing:
        if reporter is not None:
            reporter.write_line("fast-lane coverage: never imported/read by these tests: " + ", ".join(missing),
                                red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None and not seen[2]:
        reporter.write_line(f"fast-lane coverage: every test module has a test in this run, all "
                            f"{len(wanted_modules)} compiler modules imported, all {len(wanted_specs)} specs read")
