// Native player of the systolic designs on Icarus: reads the operand stream of
// sim.native.stream (a hex memory file, +stream=FILE), plays it on the design's top,
// and writes the result lines (+results=FILE). Verilog-2005; the @@...@@ fields are
// filled in by sim.native.build for one design.
`timescale 1ns/1ps
module systolic_player;
    localparam RB = @@RECORD_BYTES@@;
    localparam [31:0] LAYOUT = 32'h@@LAYOUT@@;
    // Reset is held from time zero and the inputs start at 0 without an event, as on a
    // board at power-up (the design's own time-zero behaviour decides what it shows).
    reg clk = 1'b0;
    reg rst = 1'b1;
    reg [8*RB-1:0] rec;
@@DECLS@@
    @@TOP@@ dut (
        .clk(clk),
        .rst(rst),
@@CONNECT@@
    );
    reg [8*1024-1:0] stream, results;
    reg [63:0] word, jobs, len;
    integer fi, fo, code, j, t;

    task tick;
        begin
            #5 clk = 1'b1;
            #5 clk = 1'b0;
        end
    endtask

    task header(input [8*32-1:0] what);
        begin
            code = $fscanf(fi, "%h", word);
            if (code != 1) begin
                $display("systolic-player: error: %0s: ends before %0s", stream, what);
                $finish;
            end
        end
    endtask

    initial begin
        if (!$value$plusargs("stream=%s", stream) || !$value$plusargs("results=%s", results))
        begin
            $display("systolic-player: error: give +stream=FILE and +results=FILE");
            $finish;
        end
        fi = $fopen(stream, "r");
        if (fi == 0) begin
            $display("systolic-player: error: %0s: cannot open the stream", stream);
            $finish;
        end
        fo = $fopen(results, "w");
        if (fo == 0) begin
            $display("systolic-player: error: %0s: cannot write the results", results);
            $finish;
        end
        header("the magic word");
        if (word != 64'h53595354) begin
            $display("systolic-player: error: %0s: not a systolic stream (bad magic word)",
                     stream);
            $finish;
        end
        header("the layout id");
        if (word != LAYOUT) begin
            $display({"systolic-player: error: %0s: stream for another design ",
                      "(layout id %0d, this player's is %0d)"}, stream, word, LAYOUT);
            $finish;
        end
        header("the job count");
        jobs = word;
        for (j = 0; j < jobs; j = j + 1) begin
            header("a job's cycle count");
            len = word;
            rec = {8*RB{1'b0}};
@@APPLY@@
            rst = 1'b1;
            tick;
            tick;
            rst = 1'b0;
            for (t = 0; t < len; t = t + 1) begin
                code = $fscanf(fi, "%h", rec);
                if (code != 1) begin
                    $display({"systolic-player: error: %0s: job %0d cycle %0d: no hex ",
                              "record (the stream ends or is not hex)"}, stream, j, t);
                    $finish;
                end
@@APPLY@@
                tick;
                if (@@ANY_VALID@@)
                    $fwrite(fo, "R %0d@@FORMAT@@\n", t@@VALUES@@);
            end
            $fwrite(fo, "E %0d -1 -1\n", j);
        end
        $fclose(fo);
        $finish;
    end
endmodule
